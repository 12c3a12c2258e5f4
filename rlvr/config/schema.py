"""The recipe: one typed document for a whole run, plus its derived sizes and cross-field checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field, field_validator

from rlvr.config.algorithm import AlgorithmConfig
from rlvr.config.base import StrictModel
from rlvr.config.data import DataConfig
from rlvr.config.model import ModelConfig
from rlvr.config.reward import RewardsConfig
from rlvr.config.rollout import RolloutConfig
from rlvr.config.sections import (
    CheckpointConfig,
    EvalConfig,
    LearnerConfig,
    LoggingConfig,
    ResourcesConfig,
    TrainConfig,
)
from rlvr.registry import MODULE_RE


class Recipe(StrictModel):
    """A training recipe. Every section has defaults; unknown keys anywhere are errors."""

    name: str = Field("run", pattern=r"^[A-Za-z0-9_.\-]+$")
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # Modules (`my_pkg.plugins`) or `.py` files (relative to the recipe) imported in the driver and in every
    # learner and rollout actor before anything else, so their `@register_*` names resolve everywhere.
    plugins: list[str] = Field(default_factory=list)
    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    rollout: RolloutConfig = RolloutConfig()
    learner: LearnerConfig = LearnerConfig()
    algorithm: AlgorithmConfig = AlgorithmConfig()
    rewards: RewardsConfig = RewardsConfig()
    train: TrainConfig = TrainConfig()
    checkpoint: CheckpointConfig = CheckpointConfig()
    eval: EvalConfig = EvalConfig()
    logging: LoggingConfig = LoggingConfig()
    resources: ResourcesConfig = ResourcesConfig()

    @field_validator("plugins")
    @classmethod
    def _plugin_forms(cls, value: list[str]) -> list[str]:
        for entry in value:
            if not (entry.endswith(".py") or MODULE_RE.match(entry)):
                raise ValueError(f"plugin {entry!r} is neither a module name (pkg.module) nor a .py file")
        return value

    @property
    def run_dir(self) -> str:
        """The run directory with `{name}` filled in."""
        return self.logging.run_dir.replace("{name}", self.name)


@dataclass(frozen=True)
class DerivedSizes:
    """Sizes a user should see before a run starts, each named by its unit."""

    samples_per_step: int
    max_tokens_per_step: int
    optimizer_updates_per_step: int
    prompts_per_update: int
    samples_per_update: int
    samples_per_update_per_rank: int
    learner_ranks: int
    rollout_workers: int

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def derived_sizes(recipe: Recipe) -> DerivedSizes:
    """Compute the derived batch sizes (integer division; `check_recipe` reports non-divisible shapes)."""
    prompts = recipe.train.prompts_per_step
    n = recipe.rollout.samples_per_prompt
    updates = recipe.learner.updates_per_step
    ranks = recipe.learner.num_ranks
    samples = prompts * n
    per_update = samples // updates
    return DerivedSizes(
        samples_per_step=samples,
        max_tokens_per_step=samples * (recipe.rollout.max_prompt_tokens + recipe.rollout.max_response_tokens),
        optimizer_updates_per_step=updates,
        prompts_per_update=prompts // updates,
        samples_per_update=per_update,
        samples_per_update_per_rank=per_update // ranks,
        learner_ranks=ranks,
        rollout_workers=recipe.rollout.num_workers,
    )


@dataclass(frozen=True)
class Issue:
    """One cross-field problem: level is "error" or "warning"; key is the dotted recipe path."""

    level: str
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}"


def check_recipe(recipe: Recipe) -> list[Issue]:
    """Cross-field checks that a per-field schema cannot express."""
    issues: list[Issue] = []
    prompts = recipe.train.prompts_per_step
    updates = recipe.learner.updates_per_step
    ranks = recipe.learner.num_ranks
    if prompts % updates:
        issues.append(
            Issue(
                "error",
                "learner.updates_per_step",
                f"train.prompts_per_step={prompts} is not divisible by updates_per_step={updates}; "
                "each optimizer update must hold whole prompt groups",
            )
        )
    elif (prompts // updates) % ranks:
        issues.append(
            Issue(
                "error",
                "learner.num_ranks",
                f"prompts per update ({prompts // updates}) is not divisible by num_ranks={ranks}; "
                "each rank must hold whole prompt groups",
            )
        )
    if recipe.resources.placement == "colocated" and recipe.train.async_mode != "off":
        issues.append(
            Issue(
                "error",
                "train.async_mode",
                "one-step-off async needs disaggregated placement (colocated rollout and learner share devices)",
            )
        )
    if recipe.device == "cpu":
        res = recipe.resources
        for key, gpus in (
            ("gpus_per_learner", res.gpus_per_learner),
            ("gpus_per_rollout_worker", res.gpus_per_rollout_worker),
        ):
            if gpus:
                issues.append(
                    Issue(
                        "error",
                        f"resources.{key}",
                        f"{gpus} GPUs per actor on device: cpu; Ray would wait forever for GPUs (set 0)",
                    )
                )
    placement = recipe.resources.placement_issue(
        ranks, recipe.rollout.num_workers, recipe.rollout.tensor_parallel_size, recipe.device
    )
    if placement is not None:
        issues.append(Issue("error", *placement))
    if recipe.eval.every_steps and getattr(recipe.data, "eval", None) is None:
        issues.append(
            Issue("error", "eval.every_steps", "periodic evaluation is on but data.eval is not set")
        )
    for level, key, message in recipe.algorithm.composition_issues(updates_per_step=updates):
        issues.append(Issue(level, key, message))
    return issues
