"""Advantage estimators (pipeline stage C): one scalar per response, broadcast over its tokens.

Each estimator is registered with `@register_estimator("name")` and has the signature
`fn(inp: AdvantageInputs, **hyperparameters) -> Tensor[B,T]`. All are vectorised over groups through
`Groups` (scatter/gather), so a batch may hold groups of different sizes in any order.
Math, knobs and papers: docs/algorithms.md, "Advantage estimators".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from rlvr.algo.groups import Groups
from rlvr.algo.registry import register_estimator


@dataclass
class AdvantageInputs:
    """Inputs of every estimator.

    Attributes:
        rewards_B: shaped scalar rewards (KL-in-reward already folded in when used).
        correct_B: bool verifier verdicts, before shaping.
        groups: dense group index built from `group_ids_B`.
        response_mask_BT: 1 on response tokens.
        old_logprobs_BT: behaviour-policy log-probs (LENS), or None.
        token_rewards_BT: extra per-token rewards such as -beta*KL (REINFORCE++ uses them per token), or None.
    """

    rewards_B: Tensor
    correct_B: Tensor
    groups: Groups
    response_mask_BT: Tensor
    old_logprobs_BT: Tensor | None = None
    token_rewards_BT: Tensor | None = None

    @property
    def mask(self) -> Tensor:
        return self.response_mask_BT.to(self.rewards_B.dtype)

    def broadcast(self, adv_B: Tensor) -> Tensor:
        """[B] -> [B,T] on valid tokens (the verl `scores.unsqueeze(-1) * response_mask` convention)."""
        return adv_B.unsqueeze(-1) * self.mask


Singleton = Literal["zero", "raw"]


def _singleton_fix(adv_B: Tensor, rewards_B: Tensor, groups: Groups, singleton: Singleton) -> Tensor:
    """Advantage of a response alone in its group.

    "zero" (default): no baseline can be formed, so no signal. "raw": verl's quirk (mean:=0, std:=1), A = R.
    """
    if singleton not in ("zero", "raw"):
        raise ValueError(f"singleton must be 'zero' or 'raw', got {singleton!r}")
    alone = groups.broadcast(groups.counts) == 1
    fill = rewards_B if singleton == "raw" else torch.zeros_like(rewards_B)
    return torch.where(alone, fill, adv_B)


def _outcome(inp: AdvantageInputs) -> Tensor:
    """Scalar outcome per response: shaped reward plus the row sum of any per-token rewards."""
    if inp.token_rewards_BT is None:
        return inp.rewards_B
    return inp.rewards_B + (inp.token_rewards_BT * inp.mask).sum(-1)


def grpo_scalar(
    rewards_B: Tensor,
    groups: Groups,
    *,
    eps: float = 1e-6,
    norm_by_std: bool = True,
    singleton: Singleton = "zero",
) -> Tensor:
    """[B] GRPO advantage (R - mean_g) / (std_g + eps), std unbiased as in verl/TRL/oat.

    Args:
        rewards_B: scalar rewards.
        groups: group index.
        eps: added to the std (verl 1e-6, TRL 1e-4, oat 1e-8).
        norm_by_std: False gives Dr. GRPO's R - mean_g.
        singleton: "zero" (default, no baseline -> no signal) or "raw" (verl: A = R, then divided by 1 + eps
            when normalising, e.g. 0.7 -> 0.6999993).
    """
    adv = rewards_B - groups.broadcast(groups.mean(rewards_B))
    if norm_by_std:
        adv = adv / (groups.broadcast(groups.std(rewards_B)) + eps)
    if singleton == "raw" and norm_by_std:
        # verl sets mean:=0, std:=1 for a group of one, then still adds eps to the std.
        return _singleton_fix(adv, rewards_B / (1.0 + eps), groups, "raw")
    return _singleton_fix(adv, rewards_B, groups, singleton)


@register_estimator("grpo")
def grpo(
    inp: AdvantageInputs, *, eps: float = 1e-6, norm_by_std: bool = True, singleton: Singleton = "zero"
) -> Tensor:
    """DeepSeekMath GRPO (arXiv 2402.03300): group-normalised outcome reward. See `grpo_scalar`."""
    return inp.broadcast(
        grpo_scalar(_outcome(inp), inp.groups, eps=eps, norm_by_std=norm_by_std, singleton=singleton)
    )


@register_estimator("dr_grpo")
def dr_grpo(inp: AdvantageInputs, *, singleton: Singleton = "zero") -> Tensor:
    """Dr. GRPO (arXiv 2503.20783): A = R - mean_g, no std division.

    Pair it with aggregation `seq_mean_token_sum_norm` and a constant `loss_scale_factor` (the generation
    budget) to also drop the 1/|o| length normalisation.
    """
    return inp.broadcast(grpo_scalar(_outcome(inp), inp.groups, norm_by_std=False, singleton=singleton))


@register_estimator("rloo")
def rloo(inp: AdvantageInputs, *, singleton: Singleton = "zero") -> Tensor:
    """RLOO (arXiv 2402.14740): A_i = R_i - mean_{j!=i} R_j = G/(G-1) (R_i - mean_g).

    Args:
        singleton: "zero" (default) or "raw" (verl: a group of one gets A = R).
    """
    rewards = _outcome(inp)
    g = inp.groups.broadcast(inp.groups.counts).to(rewards.dtype)
    adv = (rewards - inp.groups.broadcast(inp.groups.mean(rewards))) * g / (g - 1).clamp(min=1)
    return inp.broadcast(_singleton_fix(adv, rewards, inp.groups, singleton))


def masked_whiten(values_BT: Tensor, mask_BT: Tensor, eps: float = 1e-8) -> Tensor:
    """verl `masked_whiten`: token-weighted mean/unbiased variance over the mask, (x - mean) * rsqrt(var + eps)."""
    n = mask_BT.sum()
    mean = (values_BT * mask_BT).sum() / n.clamp(min=1)
    var = (((values_BT - mean) ** 2) * mask_BT).sum() / (n - 1).clamp(min=1)
    return (values_BT - mean) * torch.rsqrt(var + eps) * mask_BT


def _discounted_returns(token_rewards_BT: Tensor, mask_BT: Tensor, gamma: float) -> Tensor:
    """Reward-to-go sum_{k>=t} gamma^(k-t) r_k over valid tokens, reset after the response ends."""
    r = token_rewards_BT * mask_BT
    if gamma == 1.0:
        return torch.flip(torch.cumsum(torch.flip(r, [-1]), -1), [-1]) * mask_BT
    # gamma < 1 cannot use a rescaled cumsum (gamma^T underflows for long T); this loop is over T, not prompts.
    out = torch.zeros_like(r)
    running = torch.zeros_like(r[:, 0])
    for t in range(r.shape[1] - 1, -1, -1):
        running = r[:, t] + gamma * running
        out[:, t] = running
        running = running * mask_BT[:, t]
    return out * mask_BT


def _outcome_token_rewards(inp: AdvantageInputs, scalar_B: Tensor) -> Tensor:
    """Scalar reward placed on each row's last valid token, plus any per-token rewards."""
    mask = inp.mask
    last = (torch.cumsum(mask, -1) == mask.sum(-1, keepdim=True)) & (mask > 0)
    # Only the first position reaching the full count is the last valid token.
    last = last & (torch.cumsum(last.to(torch.int64), -1) == 1)
    tok = last.to(scalar_B.dtype) * scalar_B.unsqueeze(-1)
    if inp.token_rewards_BT is not None:
        tok = tok + inp.token_rewards_BT
    return tok


@register_estimator("reinforce_pp")
def reinforce_pp(inp: AdvantageInputs, *, gamma: float = 1.0) -> Tensor:
    """REINFORCE++ (arXiv 2501.03262, verl): token returns, then global token whitening.

    The outcome reward sits on the last valid token; `token_rewards_BT` (e.g. -beta*KL) are added per token.
    Whitening is token-weighted over the whole batch, so long responses dominate mean and variance.
    """
    returns = _discounted_returns(_outcome_token_rewards(inp, inp.rewards_B), inp.mask, gamma)
    return masked_whiten(returns, inp.mask)


@register_estimator("reinforce_pp_baseline")
def reinforce_pp_baseline(inp: AdvantageInputs) -> Tensor:
    """REINFORCE++-baseline (verl): subtract the group mean of the outcome, broadcast, whiten over tokens."""
    rewards = _outcome(inp)
    centred = rewards - inp.groups.broadcast(inp.groups.mean(rewards))
    return masked_whiten(inp.broadcast(centred), inp.mask)


def group_quantile(
    x_B: Tensor, groups: Groups, k: float, mode: Literal["linear", "right_continuous"]
) -> Tensor:
    """[Q] per-group K-quantile.

    "linear" is `torch.quantile`'s default interpolation (QAE's released code); "right_continuous" is the
    paper's b_K = inf{x : F(x) >= K}, i.e. the ceil(K*n)-th smallest value.
    """
    values, starts = groups.sorted_within(x_B)
    n = groups.counts
    if mode == "linear":
        pos = k * (n - 1).to(x_B.dtype)
        lo = pos.floor().long()
        hi = torch.minimum(lo + 1, n - 1)
        frac = pos - lo.to(x_B.dtype)
        v_lo, v_hi = values[starts + lo], values[starts + hi]
        return v_lo + frac * (v_hi - v_lo)
    if mode == "right_continuous":
        # The 1e-9 guard keeps K*n that is an integer up to rounding (0.6*5) from stepping one rank too far.
        rank = torch.ceil(k * n.to(torch.float64) - 1e-9).long().clamp(min=1, max=None)
        rank = torch.minimum(rank, n)
        return values[starts + rank - 1]
    raise ValueError(f"quantile_mode must be 'linear' or 'right_continuous', got {mode!r}")


@register_estimator("qae")
def qae(
    inp: AdvantageInputs,
    *,
    k: float = 0.4,
    quantile_mode: Literal["linear", "right_continuous"] = "right_continuous",
    eps: float = 1e-6,
) -> Tensor:
    """Quantile Advantage Estimation (arXiv 2509.22611): A = (R - b_K) / (std_g + eps).

    Args:
        k: quantile level in (0, 1); 0.4 by default, 0.6 against early entropy collapse.
        quantile_mode: "right_continuous" (default, the paper's b_K: hard prompts push only correct
            answers, easy prompts only wrong ones) or "linear" (the released code's `torch.quantile`, which
            for G=8, K=0.4, 5 correct gives b=0.8 instead of 1).
        eps: added to the unbiased std. A singleton group gets A = 0.
    """
    if not 0.0 < k < 1.0:
        raise ValueError(f"qae k must be in (0, 1), got {k}")
    rewards = _outcome(inp)
    baseline = inp.groups.broadcast(group_quantile(rewards, inp.groups, k, quantile_mode))
    std = inp.groups.broadcast(inp.groups.std(rewards))
    return inp.broadcast((rewards - baseline) / (std + eps))


@register_estimator("w_reinforce")
def w_reinforce(
    inp: AdvantageInputs, *, mode: Literal["weighted", "psr", "nsr"] = "weighted", lam: float = 0.1
) -> Tensor:
    """W-REINFORCE / PSR / NSR (arXiv 2506.01347, RLVR-Decomposed code) on the verdict `correct_B`.

    "psr": A = 1 if correct else 0; "nsr": 0 or -1; "weighted": lam or -1. No baseline, no normalisation;
    all-wrong groups still learn, so keep them (dynamic sampling mode keep_all_wrong or off).
    """
    correct = inp.correct_B.bool()
    one = torch.ones_like(inp.rewards_B)
    pos_value = {"weighted": lam, "psr": 1.0, "nsr": 0.0}
    neg_value = {"weighted": -1.0, "psr": 0.0, "nsr": -1.0}
    if mode not in pos_value:
        raise ValueError(f"w_reinforce mode must be one of {sorted(pos_value)}, got {mode!r}")
    return inp.broadcast(torch.where(correct, pos_value[mode] * one, neg_value[mode] * one))


@register_estimator("lens", needs_old_logprobs=True)
def lens(inp: AdvantageInputs, *, alpha: float = 0.25, eps: float = 1e-6) -> Tensor:
    """LENS (arXiv 2510.08696 §5.1): confidence-calibrated negative rewards from the old policy.

    With pi_i = exp(mean token old-logprob) and r_i = correct_i in {0,1}:
    r~_i = r_i - (1 - r_i) (1/G) pi_i / (D - pi_i), where D = max(D_imp, 2 max_j pi_j) for mixed groups
    (D_imp = (mean_i r_i / pi_i)^-1) and 2 max_j pi_j for all-wrong groups. Mixed groups are GRPO-normalised;
    all-wrong groups are only de-meaned and scaled by `alpha` (one shared aggregation, inferred); all-correct
    groups get 0. An empty response has no pi: it is treated as wrong with pi = 0, so r~ = 0 (inferred guard).
    """
    if inp.old_logprobs_BT is None:
        raise ValueError("lens needs old_logprobs_BT (behaviour-policy log-probs) to calibrate negatives")
    mask, groups, dtype = inp.mask, inp.groups, inp.rewards_B.dtype
    lengths = mask.sum(-1)
    empty = lengths == 0
    old = torch.where(mask.bool(), inp.old_logprobs_BT.to(dtype), torch.zeros_like(mask))
    pi = torch.where(empty, torch.zeros_like(lengths), torch.exp(old.sum(-1) / lengths.clamp(min=1)))
    r = (inp.correct_B.bool() & ~empty).to(dtype)

    n_pos = groups.sum(r)
    g = groups.counts.to(dtype)
    mixed_q = (n_pos > 0) & (n_pos < g)
    negative_q = n_pos == 0
    two_max = 2.0 * groups.amax(pi)
    inv_imp = groups.sum(torch.where(r > 0, r / pi.clamp(min=1e-300), torch.zeros_like(r))) / g
    d_imp = torch.where(inv_imp > 0, 1.0 / inv_imp.clamp(min=1e-300), torch.zeros_like(inv_imp))
    d = groups.broadcast(torch.where(mixed_q, torch.maximum(d_imp, two_max), two_max))
    gap = d - pi
    penalty = torch.where(gap > 0, pi / gap.clamp(min=1e-300), torch.zeros_like(pi)) / groups.broadcast(g)
    calibrated = r - (1.0 - r) * penalty

    mixed_adv = grpo_scalar(calibrated, groups, eps=eps, norm_by_std=True, singleton="zero")
    negative_adv = alpha * (calibrated - groups.broadcast(groups.mean(calibrated)))
    adv = torch.where(
        groups.broadcast(mixed_q),
        mixed_adv,
        torch.where(groups.broadcast(negative_q), negative_adv, torch.zeros_like(calibrated)),
    )
    return inp.broadcast(adv)


@register_estimator("none")
def no_advantage(inp: AdvantageInputs) -> Tensor:
    """Zero advantages, for objectives that do not read them (DRPO)."""
    return torch.zeros_like(inp.mask)
