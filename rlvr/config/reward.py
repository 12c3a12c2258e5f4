"""Rewards section of a recipe: which reward functions score completions, and the verification sandbox.

Torch-free and import-free: reward functions are named here only as strings and are resolved later by
`rlvr.reward.registry` (so `rlvr validate` never imports user code). Example::

    rewards:
      correct_score: 1.0      # DAPO uses +1 / -1: set wrong_score: -1.0
      wrong_score: 0.0
      terms:
        - fn: math                          # registered name
          kwargs: {think: true}
        - fn: my_rewards.py:brevity         # file next to the recipe (or cwd)
          weight: 0.1
        - fn: format                        # built-in shaping term (not primary)
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from rlvr.config.base import StrictModel
from rlvr.registry import spec_kind


def reward_spec_kind(spec: str) -> str:
    """Classify a reward spec string.

    Args:
        spec: `name`, `pkg.module:fn` or `path/to/file.py:fn`.

    Returns:
        "name", "import" or "file".

    Raises:
        ValueError: the string has none of the three forms.
    """
    kind = spec_kind(spec)
    if kind is not None:
        return kind
    raise ValueError(
        f"reward fn {spec!r} is not a registered name (lower_snake_case), an import path "
        "('pkg.module:fn') or a file path ('path/to/file.py:fn')"
    )


class RewardTerm(StrictModel):
    """One reward function, its weight, its keyword arguments and the rows it applies to."""

    fn: str = "math"
    weight: float = 1.0
    kwargs: dict[str, Any] = Field(default_factory=dict)
    # Rows whose `data_source` field is in this list; None = every row.
    data_source: list[str] | None = None
    # Whether this term gives the verdict (`correct`). None = decided by the registry: built-in shaping
    # rewards (`format`) are not primary, every other reward is.
    primary: bool | None = None

    @field_validator("fn")
    @classmethod
    def _check_fn(cls, value: str) -> str:
        reward_spec_kind(value)
        return value

    @field_validator("data_source", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("kwargs")
    @classmethod
    def _no_reserved(cls, value: dict[str, Any]) -> dict[str, Any]:
        if "answer" in value:
            raise ValueError("kwargs may not set 'answer': it comes from the dataset row")
        return value


class SandboxConfig(StrictModel):
    """The pool of worker processes that runs every reward function."""

    workers: int = Field(2, ge=1)
    # Hard wall-clock limit per (completion, reward) item; the worker is killed and replaced past it.
    timeout_s: float = Field(5.0, gt=0)
    # Address-space budget of a worker above its footprint after imports (RLIMIT_AS).
    memory_mb: int = Field(1024, ge=64)
    # A batch where more than this fraction of items error or time out raises RewardError.
    max_error_fraction: float = Field(0.5, ge=0.0, le=1.0)
    # Workers may not spawn processes, open sockets or write files (Python audit hook).
    block_side_effects: bool = True
    start_timeout_s: float = Field(120.0, gt=0)


class RewardsConfig(StrictModel):
    """Which reward functions score completions, how they combine, and the verification sandbox.

    The combined reward of a completion is `sum(weight * term_score)` over the terms that apply to its
    row. The primary term's verdict is mapped to `correct_score` / `wrong_score` ({0, 1} by default,
    ±1 for DAPO); errors and timeouts score as wrong and are counted in metrics.
    """

    terms: list[RewardTerm] = Field(default_factory=lambda: [RewardTerm()], min_length=1)
    correct_score: float = 1.0
    wrong_score: float = 0.0
    sandbox: SandboxConfig = SandboxConfig()
    # Dataset rows the reward contract is checked on before training (0 = skip).
    contract_check_rows: int = Field(4, ge=0)

    @model_validator(mode="after")
    def _scores_ordered(self) -> RewardsConfig:
        if self.correct_score <= self.wrong_score:
            raise ValueError(
                f"correct_score ({self.correct_score}) must exceed wrong_score ({self.wrong_score})"
            )
        return self
