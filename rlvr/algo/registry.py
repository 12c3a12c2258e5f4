"""The algorithm library's registries: estimators, policy losses, objectives, modifiers, KL, aggregations.

Each is an `rlvr.registry.Registry` (stdlib only, so this module imports no torch). Built-ins register
themselves with the decorators below; users do the same from a module or file listed under the recipe's
`plugins:`, or name a function by import path (`"pkg.mod:fn"`). Registration carries what a method needs from
the driver, which asks the registry instead of checking names (any estimator, loss or modifier):

* `needs_old_entropy=True`: the learners compute the behaviour policy's per-token entropy before the update
  and pass it as `LossInputs.old_entropy` (ERC).
* `needs_old_logprobs=True`: the estimator reads the behaviour policy's logprobs, so the learners score them
  before the advantage (LENS); otherwise an on-policy step takes them from the update's own forward pass.
* `needs_reference=True`: the learners keep the frozen reference model and pass `LossInputs.ref_logprobs`,
  with or without a `kl_to_ref` term.
* `budget_kwarg="max_tokens"`: that keyword argument defaults to the generation budget
  (`rollout.max_response_tokens`) when the recipe leaves it unset (DRPO's length reward 1 - |o|/C).
"""

from __future__ import annotations

from rlvr.registry import Registry, spec_kind

ESTIMATORS = Registry("advantage estimator")
POLICY_LOSSES = Registry("policy loss")
OBJECTIVES = Registry("whole objective")
LOSS_MODIFIERS = Registry("loss modifier")
KL_ESTIMATORS = Registry("KL estimator")
AGGREGATIONS = Registry("loss aggregation")

register_estimator = ESTIMATORS.register
register_policy_loss = POLICY_LOSSES.register
register_objective = OBJECTIVES.register
register_loss_modifier = LOSS_MODIFIERS.register
register_kl_estimator = KL_ESTIMATORS.register
register_aggregation = AGGREGATIONS.register

__all__ = [
    "AGGREGATIONS",
    "ESTIMATORS",
    "KL_ESTIMATORS",
    "LOSS_MODIFIERS",
    "OBJECTIVES",
    "POLICY_LOSSES",
    "Registry",
    "register_aggregation",
    "register_estimator",
    "register_kl_estimator",
    "register_loss_modifier",
    "register_objective",
    "register_policy_loss",
    "spec_kind",
]
