"""The recipe's `algorithm:` section: advantage estimator, policy loss, modifiers, aggregation, shaping.

Imports no torch: `rlvr validate` checks a recipe on any machine. Methods are chosen by `name` with typed,
defaulted hyperparameters per method; any other name (a user `@register_*` name or an import path
`pkg.mod:fn`) takes free `kwargs`. `to_spec()` hands plain values to `rlvr.algo.compute_policy_loss` /
`compute_advantages`. Example:

    algorithm:
      estimator: {name: grpo, eps: 1.0e-6, norm_by_std: true}
      loss: {name: ppo_clip, eps_low: 0.2, eps_high: 0.28, clip_ratio_c: 10}
      erc: {low: 0.05, high: 0.05}
      aggregation: token_mean
      dynamic_sampling: {enabled: true, mode: drop_uniform, max_gen_batches: 10}
      overlong: {enabled: true, max_tokens: 20480, cache_tokens: 4096}

Math, defaults and the paper/code discrepancies: docs/algorithms.md and the `rlvr/algo/*` docstrings.
"""

from __future__ import annotations

import functools
import operator
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Discriminator, Field, Tag, field_validator, model_validator

from rlvr.config.base import StrictModel
from rlvr.registry import spec_kind

Singleton = Literal["zero", "raw"]


class _Method(StrictModel):
    """A method chosen by `name`; its other fields are the hyperparameters passed as kwargs."""

    def to_spec(self) -> dict[str, Any]:
        """`{"name": ..., "kwargs": {...}}` for the algorithm library."""
        data = self.model_dump(by_alias=True)
        return {"name": data.pop("name"), "kwargs": data}


class _Plugin(StrictModel):
    """A user-registered name or an import path, with free keyword arguments."""

    name: str
    kwargs: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _spec(cls, value: str) -> str:
        kind = spec_kind(value)
        if kind == "file":
            # The learners run in other processes and directories: a file reaches them through `plugins:`.
            raise ValueError(f"{value!r}: list the file under plugins: and use the name it registers")
        if kind is None:
            raise ValueError(f"{value!r} is not a registered name (lower_snake_case) or 'pkg.module:fn'")
        return value

    def to_spec(self) -> dict[str, Any]:
        return {"name": self.name, "kwargs": dict(self.kwargs)}


# ---- advantage estimators -------------------------------------------------------------------------------


class GRPOEstimator(_Method):
    """GRPO: (R - mean_g) / (std_g + eps), unbiased std. `singleton: raw` reproduces verl's A = R quirk."""

    name: Literal["grpo"] = "grpo"
    eps: float = Field(1e-6, ge=0)
    norm_by_std: bool = True
    singleton: Singleton = "zero"


class DrGRPOEstimator(_Method):
    """Dr. GRPO: R - mean_g (pair with aggregation seq_mean_token_sum_norm and a loss_scale_factor)."""

    name: Literal["dr_grpo"] = "dr_grpo"
    singleton: Singleton = "zero"


class RLOOEstimator(_Method):
    """RLOO leave-one-out baseline."""

    name: Literal["rloo"] = "rloo"
    singleton: Singleton = "zero"


class ReinforcePPEstimator(_Method):
    """REINFORCE++: discounted token returns, global token whitening."""

    name: Literal["reinforce_pp"] = "reinforce_pp"
    gamma: float = Field(1.0, gt=0, le=1)


class ReinforcePPBaselineEstimator(_Method):
    """REINFORCE++-baseline: group-mean baseline, then token whitening."""

    name: Literal["reinforce_pp_baseline"] = "reinforce_pp_baseline"


class QAEEstimator(_Method):
    """QAE: K-quantile baseline. right_continuous = the paper's quantile; linear = the released code's."""

    name: Literal["qae"] = "qae"
    k: float = Field(0.4, gt=0, lt=1)
    quantile_mode: Literal["right_continuous", "linear"] = "right_continuous"
    eps: float = Field(1e-6, ge=0)


class WReinforceEstimator(_Method):
    """W-REINFORCE (weighted: lam or -1), PSR (1 or 0), NSR (0 or -1), on the verdict."""

    name: Literal["w_reinforce"] = "w_reinforce"
    mode: Literal["weighted", "psr", "nsr"] = "weighted"
    lam: float = Field(0.1, ge=0)


class LensEstimator(_Method):
    """LENS: old-policy-confidence-calibrated negatives; alpha weighs all-wrong groups."""

    name: Literal["lens"] = "lens"
    alpha: float = Field(0.25, ge=0)
    eps: float = Field(1e-6, ge=0)


class NoEstimator(_Method):
    """No advantages (for objectives that do not read them, such as DRPO)."""

    name: Literal["none"] = "none"


class CustomEstimator(_Plugin):
    """An estimator registered with `@register_estimator` or given as `pkg.mod:fn`."""


_ESTIMATORS: dict[str, type[_Method]] = {
    cls.model_fields["name"].default: cls
    for cls in (
        GRPOEstimator,
        DrGRPOEstimator,
        RLOOEstimator,
        ReinforcePPEstimator,
        ReinforcePPBaselineEstimator,
        QAEEstimator,
        WReinforceEstimator,
        LensEstimator,
        NoEstimator,
    )
}

# ---- policy losses --------------------------------------------------------------------------------------


class PPOClipLoss(_Method):
    """PPO/GRPO clip; eps_high > eps_low is clip-higher; clip_ratio_c enables dual-clip (None: off)."""

    name: Literal["ppo_clip"] = "ppo_clip"
    eps_low: float = Field(0.2, ge=0, le=1)
    eps_high: float = Field(0.2, ge=0)
    clip_ratio_c: float | None = Field(None, gt=1)
    log_ratio_clamp: float = Field(20.0, gt=0)


class PGLoss(_Method):
    """Unclipped importance-weighted policy gradient -A r (the reference KL-Cov base)."""

    name: Literal["pg"] = "pg"
    log_ratio_clamp: float = Field(20.0, gt=0)


class GPPOLoss(_Method):
    """GPPO: clip value, bounded gradient kept on clipped tokens."""

    name: Literal["gppo"] = "gppo"
    eps_low: float = Field(0.2, ge=0, le=1)
    eps_high: float = Field(0.2, ge=0)
    clip_ratio_c: float | None = Field(10.0, gt=1)
    log_ratio_clamp: float = Field(20.0, gt=0)


class GSPOLoss(_Method):
    """GSPO sequence-level ratio (forces seq_mean_token_mean)."""

    name: Literal["gspo"] = "gspo"
    eps_low: float = Field(3e-4, ge=0, le=1)
    eps_high: float = Field(4e-4, ge=0)


class DRPOLoss(_Method):
    """DRPO whole objective (replaces estimator and clip); `lam` is the paper's lambda."""

    name: Literal["drpo"] = "drpo"
    tau: float = Field(10.0, gt=0)
    lam: float = Field(0.1, gt=0)
    beta: float = Field(1e3, ge=0)
    delta: float = Field(1e-4, ge=0)
    kl_type: Literal["kl", "low_var_kl"] = "kl"
    # C of the length reward 1 - |o|/C; None = the padded width, i.e. the rollout's max_response_tokens.
    max_tokens: int | None = Field(None, ge=1)


class CustomLoss(_Plugin):
    """A loss registered with `@register_policy_loss` / `@register_objective`, or `pkg.mod:fn`."""


_LOSSES: dict[str, type[_Method]] = {
    cls.model_fields["name"].default: cls for cls in (PPOClipLoss, PGLoss, GPPOLoss, GSPOLoss, DRPOLoss)
}


def _name_shorthand(value: Any) -> Any:
    """Accept `estimator: grpo` for `estimator: {name: grpo}`."""
    return {"name": value} if isinstance(value, str) else value


def _tagger(builtins: dict[str, type[_Method]], default: str):
    def tag(value: Any) -> str:
        name = value.get("name", default) if isinstance(value, dict) else getattr(value, "name", None)
        return name if name in builtins else "custom"

    return tag


def _union(builtins: dict[str, type[_Method]], custom: type[_Plugin], default: str) -> Any:
    """Discriminated union on `name`: a built-in name selects its typed model, any other name the plugin form.

    A mapping without `name` means the default method, so `{eps_high: 0.28}` tunes the default PPO clip.
    """
    members = [Annotated[cls, Tag(name)] for name, cls in builtins.items()]
    members.append(Annotated[custom, Tag("custom")])
    return Annotated[
        Annotated[functools.reduce(operator.or_, members), Discriminator(_tagger(builtins, default))],
        BeforeValidator(_name_shorthand),
    ]


EstimatorConfig = _union(_ESTIMATORS, CustomEstimator, "grpo")
LossConfig = _union(_LOSSES, CustomLoss, "ppo_clip")

# ---- modifiers, shaping, filters ------------------------------------------------------------------------


class ClipCovConfig(_Method):
    """Clip-Cov: zero the loss of a random `ratio` fraction of tokens with lb < cov < ub."""

    name: Literal["clip_cov"] = "clip_cov"
    ratio: float = Field(2e-4, gt=0, le=1)
    lb: float = 1.0
    ub: float = 5.0

    @model_validator(mode="after")
    def _window(self) -> ClipCovConfig:
        if self.lb >= self.ub:
            raise ValueError(f"clip_cov needs lb < ub, got lb={self.lb}, ub={self.ub}")
        return self


class KLCovConfig(_Method):
    """KL-Cov: coef*|log r| on the top `ratio` FRACTION of tokens by covariance (PRIME's k_percent / 100)."""

    name: Literal["kl_cov"] = "kl_cov"
    ratio: float = Field(2e-3, gt=0, le=1)
    coef: float = Field(1.0, ge=0)


class ERCConfig(StrictModel):
    """Entropy Ratio Clipping: keep the gradient of tokens with 1-low < H/H_old < 1+high."""

    low: float = Field(0.05, gt=0, lt=1)
    high: float = Field(0.05, gt=0)

    def to_spec(self) -> dict[str, Any]:
        return {"name": "erc", "kwargs": self.model_dump()}


class CustomModifier(_Plugin):
    """A loss modifier registered with `@register_loss_modifier` (module under `plugins:`), or a path."""


class KLToRefConfig(StrictModel):
    """KL to the frozen reference policy, as a loss term or as a per-token reward penalty."""

    estimator: Literal["k1", "k2", "k3", "abs", "k1+", "k2+", "k3+", "abs+"] = "k3"
    coef: float = Field(0.001, ge=0)
    as_: Literal["loss", "reward"] = Field("loss", alias="as")


class DynamicSamplingConfig(StrictModel):
    """DAPO dynamic sampling: drop groups with uniform accuracy, regenerate up to `max_gen_batches` (0 = no cap)."""

    enabled: bool = False
    mode: Literal["drop_uniform", "keep_all_wrong"] = "drop_uniform"
    max_gen_batches: int = Field(10, ge=0)


class OverlongConfig(StrictModel):
    """DAPO soft overlong punishment (eq. 13), added to the reward."""

    enabled: bool = False
    max_tokens: int | None = Field(None, ge=1)
    cache_tokens: int = Field(4096, ge=1)
    factor: float = Field(1.0, ge=0)

    @model_validator(mode="after")
    def _sizes(self) -> OverlongConfig:
        if self.enabled and self.max_tokens is None:
            raise ValueError("overlong shaping is enabled but max_tokens (L_max) is not set")
        if self.max_tokens is not None and self.cache_tokens > self.max_tokens:
            raise ValueError(f"cache_tokens={self.cache_tokens} exceeds max_tokens={self.max_tokens}")
        return self


Aggregation = Literal["token_mean", "seq_mean_token_mean", "seq_mean_token_sum", "seq_mean_token_sum_norm"]


class AlgorithmConfig(StrictModel):
    """Advantage estimator, policy loss, modifiers and aggregation. Default: GRPO + PPO clip 0.2/0.2, token-mean."""

    estimator: EstimatorConfig = Field(default_factory=GRPOEstimator)
    loss: LossConfig = Field(default_factory=PPOClipLoss)
    cov: Annotated[ClipCovConfig | KLCovConfig, Field(discriminator="name")] | None = None
    erc: ERCConfig | None = None
    # Your own loss modifiers, applied in order after `cov` and before `erc`.
    modifiers: list[CustomModifier] = Field(default_factory=list)
    kl_to_ref: KLToRefConfig | None = None
    entropy_coef: float = 0.0
    # The ERC release adds coef * mean NLL over correct responses' tokens; off unless reproducing that code.
    positive_nll_coef: float = Field(0.0, ge=0)
    aggregation: Aggregation = "token_mean"
    # C of seq_mean_token_sum_norm (Dr. GRPO: the generation budget); None = rollout.max_response_tokens.
    loss_scale_factor: float | None = Field(None, gt=0)
    dynamic_sampling: DynamicSamplingConfig = Field(default_factory=DynamicSamplingConfig)
    overlong: OverlongConfig = Field(default_factory=OverlongConfig)

    def to_spec(self) -> dict[str, Any]:
        """Plain-value spec for `rlvr.algo.compute_advantages` / `compute_policy_loss`."""
        modifiers = [m.to_spec() for m in (self.cov, *self.modifiers, self.erc) if m is not None]
        return {
            "estimator": self.estimator.to_spec(),
            "loss": self.loss.to_spec(),
            "modifiers": modifiers,
            "kl_to_ref": self.kl_to_ref.model_dump(by_alias=True) if self.kl_to_ref else None,
            "entropy_coef": self.entropy_coef,
            "positive_nll_coef": self.positive_nll_coef,
            "aggregation": self.aggregation,
            "loss_scale_factor": self.loss_scale_factor,
            "dynamic_sampling": self.dynamic_sampling.model_dump(),
            "overlong": self.overlong.model_dump(),
        }

    def composition_issues(self, *, updates_per_step: int) -> list[tuple[str, str, str]]:
        """Cross-field problems of this section: (level, dotted recipe key, message), level "error"/"warning".

        Args:
            updates_per_step: optimizer updates per rollout step (1 means on-policy).
        """
        from rlvr.config.algorithm_checks import CHECKS

        issues: list[tuple[str, str, str]] = []
        for check in CHECKS:
            issues.extend(check(self, updates_per_step))
        return issues
