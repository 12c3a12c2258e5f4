"""Algorithm library: advantage estimators, policy losses, modifiers, DRPO, aggregation, shaping, filters.

Pure torch + stdlib (no ray / vllm / deepspeed / transformers / pydantic), so it runs and is tested anywhere.
The learner calls `compute_advantages` and `compute_policy_loss`; users extend it with the `register_*`
decorators or by naming a function by import path (`"pkg.mod:fn"`) in the recipe.
"""

from rlvr.algo import advantages, aggregate, drpo, kl, losses, modifiers  # noqa: F401  (registration)
from rlvr.algo.advantages import AdvantageInputs, grpo_scalar, masked_whiten
from rlvr.algo.aggregate import aggregate as aggregate_loss
from rlvr.algo.api import PolicyLoss, compute_advantages, compute_policy_loss
from rlvr.algo.contract import LossInputs, LossOutputs, PolicyTerm, masked_mean, masked_sum
from rlvr.algo.groups import Groups
from rlvr.algo.kl import kl_estimate, kl_reward_penalty
from rlvr.algo.registry import (
    AGGREGATIONS,
    ESTIMATORS,
    KL_ESTIMATORS,
    LOSS_MODIFIERS,
    OBJECTIVES,
    POLICY_LOSSES,
    Registry,
    register_aggregation,
    register_estimator,
    register_kl_estimator,
    register_loss_modifier,
    register_objective,
    register_policy_loss,
)
from rlvr.algo.shaping import dynamic_sampling_keep, format_penalty, overlong_penalty

__all__ = [
    "AGGREGATIONS",
    "ESTIMATORS",
    "KL_ESTIMATORS",
    "LOSS_MODIFIERS",
    "OBJECTIVES",
    "POLICY_LOSSES",
    "AdvantageInputs",
    "Groups",
    "LossInputs",
    "LossOutputs",
    "PolicyLoss",
    "PolicyTerm",
    "Registry",
    "aggregate_loss",
    "compute_advantages",
    "compute_policy_loss",
    "dynamic_sampling_keep",
    "format_penalty",
    "grpo_scalar",
    "kl_estimate",
    "kl_reward_penalty",
    "masked_mean",
    "masked_sum",
    "masked_whiten",
    "overlong_penalty",
    "register_aggregation",
    "register_estimator",
    "register_kl_estimator",
    "register_loss_modifier",
    "register_objective",
    "register_policy_loss",
]
