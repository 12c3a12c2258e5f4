"""The two calls the learner makes: `compute_advantages` and `compute_policy_loss`.

An algorithm is described by plain values (names + kwargs dicts), normally `AlgorithmConfig.to_spec()`:

    spec = {
        "estimator": {"name": "grpo", "kwargs": {"eps": 1e-6}},        # used by compute_advantages
        "loss": {"name": "ppo_clip", "kwargs": {"eps_low": 0.2, "eps_high": 0.28}},   # or an objective: drpo
        "modifiers": [{"name": "clip_cov", "kwargs": {}}, {"name": "erc", "kwargs": {}}],  # applied in order
        "kl_to_ref": {"estimator": "k3", "coef": 0.04, "as": "loss"},   # or None; "reward" -> kl_reward_penalty
        "entropy_coef": 0.0,
        "positive_nll_coef": 0.0,       # ERC code's extra mean NLL over correct responses' tokens (default off)
        "aggregation": "token_mean",
        "loss_scale_factor": None,
        "dynamic_sampling": {...}, "overlong": {...},   # read by the rollout/reward stages, ignored here
    }

Every key is optional; `{}` means GRPO advantages and PPO clip 0.2/0.2, token-mean.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from rlvr.algo.advantages import AdvantageInputs
from rlvr.algo.aggregate import aggregate
from rlvr.algo.contract import LossInputs, LossOutputs, masked_mean, masked_sum
from rlvr.algo.groups import Groups
from rlvr.algo.kl import kl_estimate
from rlvr.algo.registry import ESTIMATORS, LOSS_MODIFIERS, OBJECTIVES, POLICY_LOSSES

SPEC_KEYS = frozenset(
    {
        "estimator",
        "loss",
        "modifiers",
        "kl_to_ref",
        "entropy_coef",
        "positive_nll_coef",
        "aggregation",
        "loss_scale_factor",
        "dynamic_sampling",
        "overlong",
    }
)
DEFAULT_LOSS = {"name": "ppo_clip", "kwargs": {}}


def compute_advantages(
    name: str,
    rewards_B: Tensor,
    correct_B: Tensor,
    group_ids_B: Tensor,
    response_mask_BT: Tensor,
    old_logprobs_BT: Tensor | None = None,
    *,
    token_rewards_BT: Tensor | None = None,
    **kwargs: Any,
) -> Tensor:
    """Per-token advantages [B,T] from a registered (or `pkg.mod:fn`) estimator, without gradient.

    Args:
        name: estimator name, e.g. "grpo", "dr_grpo", "rloo", "reinforce_pp", "reinforce_pp_baseline",
            "qae", "w_reinforce", "lens", "none", or an import path.
        rewards_B: shaped scalar rewards.
        correct_B: bool verifier verdicts.
        group_ids_B: prompt id per response (any ints, any order).
        response_mask_BT: 1 on response tokens.
        old_logprobs_BT: behaviour-policy log-probs (LENS needs them).
        token_rewards_BT: optional per-token rewards, e.g. `kl_reward_penalty(...)`.
        **kwargs: the estimator's hyperparameters.
    """
    if rewards_B.shape[0] != response_mask_BT.shape[0] or group_ids_B.shape[0] != rewards_B.shape[0]:
        raise ValueError(
            f"batch sizes differ: rewards {tuple(rewards_B.shape)}, group_ids {tuple(group_ids_B.shape)}, "
            f"response_mask {tuple(response_mask_BT.shape)}"
        )
    fn = ESTIMATORS.get(name)
    with torch.no_grad():
        inp = AdvantageInputs(
            rewards_B=rewards_B if rewards_B.is_floating_point() else rewards_B.float(),
            correct_B=correct_B,
            groups=Groups.from_ids(group_ids_B),
            response_mask_BT=response_mask_BT,
            old_logprobs_BT=old_logprobs_BT,
            token_rewards_BT=token_rewards_BT,
        )
        return fn(inp, **kwargs)


def _named(entry: Mapping[str, Any] | None, default: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    entry = default if entry is None else entry
    if "name" not in entry:
        raise ValueError(f"spec entry {dict(entry)!r} has no 'name'")
    return entry["name"], dict(entry.get("kwargs") or {})


class PolicyLoss:
    """A recipe's policy loss, resolved once (registry lookups, kwargs, spec checks) and called per micro-batch.

    Args:
        spec: algorithm spec as plain values (module docstring); unknown top-level keys are errors.

    Raises:
        ValueError: unknown spec keys, token modifiers on a whole objective.
        KeyError: unknown names (the message lists the registered ones).
    """

    def __init__(self, spec: Mapping[str, Any]) -> None:
        unknown = set(spec) - SPEC_KEYS
        if unknown:
            raise ValueError(f"unknown algorithm spec keys {sorted(unknown)}; known: {sorted(SPEC_KEYS)}")
        self.agg_mode = spec.get("aggregation") or "token_mean"
        self.loss_scale_factor = spec.get("loss_scale_factor")
        self.name, self.kwargs = _named(spec.get("loss"), DEFAULT_LOSS)
        modifiers = list(spec.get("modifiers") or [])
        self.objective = OBJECTIVES.get(self.name) if self.name in OBJECTIVES else None
        if self.objective is not None and modifiers:
            raise ValueError(
                f"{self.name} is a whole objective without per-token losses; token modifiers "
                f"{[m.get('name') for m in modifiers]} cannot apply to it"
            )
        self.term = None if self.objective is not None else POLICY_LOSSES.get(self.name)
        self.modifiers = [(LOSS_MODIFIERS.get(n), kw) for n, kw in (_named(m, {}) for m in modifiers)]
        kl = spec.get("kl_to_ref")
        self.kl = kl if kl and kl.get("as", "loss") == "loss" and kl.get("coef", 0.0) != 0.0 else None
        self.entropy_coef = float(spec.get("entropy_coef") or 0.0)
        self.nll_coef = float(spec.get("positive_nll_coef") or 0.0)

    def __call__(
        self,
        inputs: LossInputs,
        token_normaliser: float | Tensor | None = None,
        generator: torch.Generator | None = None,
        seq_normaliser: float | Tensor | None = None,
        *,
        question_normaliser: float | Tensor | None = None,
        positive_token_normaliser: float | Tensor | None = None,
    ) -> LossOutputs:
        """Loss (to minimise) and metrics for one (micro-)batch (arguments as in `compute_policy_loss`)."""
        mask = inputs.mask
        agg_mode = self.agg_mode
        agg_kw = {
            "token_normaliser": token_normaliser,
            "seq_normaliser": seq_normaliser,
            "loss_scale_factor": self.loss_scale_factor,
        }
        if self.objective is not None:
            out = self.objective(
                inputs,
                token_normaliser=token_normaliser,
                question_normaliser=question_normaliser,
                **self.kwargs,
            )
            policy, metrics = out.loss, dict(out.metrics)
        else:
            term = self.term(inputs, generator=generator, **self.kwargs)
            for modifier, mod_kw in self.modifiers:
                term = modifier(inputs, term, generator=generator, **mod_kw)
            policy = aggregate(term.loss_BT, mask, term.aggregation or agg_mode, **agg_kw)
            metrics = dict(term.metrics)

        total = policy
        metrics["policy_loss"] = policy.detach()
        if self.kl is not None:
            inputs.require("ref_logprobs", by="kl_to_ref")
            kl_BT = kl_estimate(inputs.logprobs, inputs.ref_logprobs.detach(), self.kl.get("estimator", "k3"))
            total = total + self.kl["coef"] * aggregate(kl_BT, mask, agg_mode, **agg_kw)
            metrics["kl_ref"] = masked_mean(kl_BT.detach(), mask)
        if self.entropy_coef != 0.0:
            inputs.require("entropy", by="entropy bonus")
            total = total - self.entropy_coef * aggregate(inputs.entropy, mask, agg_mode, **agg_kw)
        if inputs.entropy is not None:
            metrics["entropy"] = masked_mean(inputs.entropy.detach(), mask)
        if self.nll_coef != 0.0:
            inputs.require("correct", by="positive_nll_coef")
            total = total + self.nll_coef * positive_nll(inputs, positive_token_normaliser)
        metrics["loss"] = total.detach()
        return LossOutputs(loss=total, metrics=metrics)


def compute_policy_loss(
    spec: Mapping[str, Any],
    inputs: LossInputs,
    token_normaliser: float | Tensor | None = None,
    generator: torch.Generator | None = None,
    seq_normaliser: float | Tensor | None = None,
    *,
    question_normaliser: float | Tensor | None = None,
    positive_token_normaliser: float | Tensor | None = None,
) -> LossOutputs:
    """Loss (to minimise) and metrics for one (micro-)batch: ``PolicyLoss(spec)(inputs, ...)``.

    Args:
        spec: algorithm spec as plain values (module docstring); unknown top-level keys are errors.
        inputs: the tensor contract.
        token_normaliser: token count token-mean divides by; pass the global count / world size for
            data-parallel and micro-batch invariance (default: this batch's tokens).
        generator: RNG for randomised modifiers (Clip-Cov), for reproducibility.
        seq_normaliser: non-empty sequence count the seq modes divide by (default: this call's).
        question_normaliser: question (prompt group) count a whole objective such as DRPO divides by
            (default: this call's groups).
        positive_token_normaliser: token count of correct responses the `positive_nll_coef` term divides by
            (default: this call's).

    Every normaliser is meant to be the count over the whole mini-batch divided by the data-parallel world
    size; then the summed micro-batch gradients, averaged over ranks, do not depend on the layout
    (docs/algorithms.md, "Layout invariance"). A learner builds the `PolicyLoss` once and calls it instead.

    Raises:
        ValueError: unknown spec keys, token modifiers on a whole objective, missing inputs.
        KeyError: unknown names (the message lists the registered ones).
    """
    return PolicyLoss(spec)(
        inputs,
        token_normaliser,
        generator,
        seq_normaliser,
        question_normaliser=question_normaliser,
        positive_token_normaliser=positive_token_normaliser,
    )


def positive_nll(inputs: LossInputs, positive_token_normaliser: float | Tensor | None = None) -> Tensor:
    """ERC release's extra term: mean NLL over the tokens of correct responses.

    sum over correct responses' tokens of -log pi, divided by the number of those tokens (the global count
    over the mini-batch / world size when given, else this call's). Whatever the aggregation mode, the ERC
    code averages over correct tokens only, so the term does not shrink with the batch's accuracy.
    """
    inputs.require("correct", by="positive_nll_coef")
    pos_mask = inputs.mask * inputs.correct.to(inputs.mask.dtype).unsqueeze(-1)
    n = positive_token_normaliser if positive_token_normaliser is not None else pos_mask.sum().clamp(min=1)
    return masked_sum(-inputs.logprobs, pos_mask) / n
