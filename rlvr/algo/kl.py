"""Per-token KL-to-reference estimators (verl `kl_penalty_forward`; spec §0.2, T8).

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
    """[B,T] per-token reward -coef * KL(old || ref) for KL-in-reward (verl `apply_kl_penalty`).

    Pass the result as `token_rewards_BT` to `compute_advantages`: outcome estimators add its row sum to the
    reward, REINFORCE++ uses it per token. No gradient flows (rewards are constants).
    """
    with torch.no_grad():
        kl = kl_estimate(old_logprobs_BT, ref_logprobs_BT, estimator)
        return -coef * kl * response_mask_BT.to(kl.dtype)
