"""Per-token KL-to-reference estimators (as verl's `kl_penalty_forward`).

Names: "k1", "abs", "k2", "k3" (low-variance KL, GRPO's choice). A `+` suffix ("k3+") keeps the forward value
of the named estimator and takes the gradient of k2 (straight-through), as verl does. The same estimate serves
as a loss term (`compute_policy_loss`) or as a per-token reward penalty (`kl_reward_penalty`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from rlvr.algo.registry import KL_ESTIMATORS, register_kl_estimator

_LOG_RATIO_CLAMP = 20.0
_K3_CLAMP = 10.0


@register_kl_estimator("k1")
def kl_k1(logprobs: Tensor, ref_logprobs: Tensor) -> Tensor:
    """log pi - log pi_ref."""
    return logprobs - ref_logprobs


@register_kl_estimator("abs")
def kl_abs(logprobs: Tensor, ref_logprobs: Tensor) -> Tensor:
    """|log pi - log pi_ref|."""
    return (logprobs - ref_logprobs).abs()


@register_kl_estimator("k2")
def kl_k2(logprobs: Tensor, ref_logprobs: Tensor) -> Tensor:
    """0.5 (log pi - log pi_ref)^2."""
    return 0.5 * (logprobs - ref_logprobs).square()


@register_kl_estimator("k3")
def kl_k3(logprobs: Tensor, ref_logprobs: Tensor) -> Tensor:
    """exp(d) - d - 1 with d = log pi_ref - log pi, d clamped to +-20 and the result to +-10 (verl)."""
    d = (ref_logprobs - logprobs).clamp(-_LOG_RATIO_CLAMP, _LOG_RATIO_CLAMP)
    return (torch.exp(d) - d - 1.0).clamp(-_K3_CLAMP, _K3_CLAMP)


def kl_estimate(logprobs: Tensor, ref_logprobs: Tensor, estimator: str = "k3") -> Tensor:
    """Per-token KL estimate by name; "<name>+" uses the k2 gradient with the <name> value.

    Raises:
        KeyError: unknown estimator (lists the registered ones).
    """
    if estimator.endswith("+"):
        value = KL_ESTIMATORS.get(estimator[:-1])(logprobs, ref_logprobs)
        surrogate = kl_k2(logprobs, ref_logprobs)
        return surrogate - surrogate.detach() + value.detach()
    return KL_ESTIMATORS.get(estimator)(logprobs, ref_logprobs)


def kl_reward_penalty(
    old_logprobs_BT: Tensor,
    ref_logprobs_BT: Tensor,
    response_mask_BT: Tensor,
    *,
    coef: float,
    estimator: str = "k1",
) -> Tensor:
    """[B,T] per-token reward for `kl_to_ref.as: reward` (as verl's `apply_kl_penalty`, OpenRLHF's KL reward).

    With m the response mask and k the named estimator (k1: log pi_old - log pi_ref)::

        r_kl[b, t] = -coef * k(old_logprobs[b, t], ref_logprobs[b, t]) * m[b, t]

    Pass it as `token_rewards_BT` to `compute_advantages`. Outcome-reward estimators (grpo, dr_grpo, rloo,
    qae, reinforce_pp_baseline) then use the penalised sequence reward

        R'_b = R_b - coef * sum_t m[b, t] * k(old[b, t], ref[b, t])

    in place of R_b (before the group baseline/normalisation); REINFORCE++ adds r_kl per token to the
    discounted return. Verdict-based estimators (w_reinforce, lens) ignore rewards. The penalty uses the
    behaviour policy's logprobs, so it is a constant: no gradient flows through it.
    """
    with torch.no_grad():
        kl = kl_estimate(old_logprobs_BT, ref_logprobs_BT, estimator)
        return -coef * kl * response_mask_BT.to(kl.dtype)
