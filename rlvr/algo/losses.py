"""Per-token policy losses (pipeline stage D): PPO clip family, GPPO, GSPO, unclipped policy gradient.

Each loss is registered with `@register_policy_loss("name")` and has the signature
`fn(inputs: LossInputs, *, generator=None, **hyperparameters) -> PolicyTerm`; the loss is the quantity to
MINIMISE per token (negative surrogate). Token modifiers (Clip-Cov, KL-Cov, ERC) live in `modifiers.py`, the
DRPO objective in `drpo.py`. Math and knobs: docs/algorithms.md, "Policy losses".
"""

from __future__ import annotations

import torch
from torch import Tensor

from rlvr.algo.contract import LossInputs, PolicyTerm, masked_mean
from rlvr.algo.registry import register_policy_loss


def log_ratio(inputs: LossInputs, clamp: float = 20.0) -> Tensor:
    """log pi - log pi_old, clamped to [-clamp, clamp] so exp() stays finite (verl)."""
    return (inputs.logprobs - inputs.old_logprobs.detach()).clamp(-clamp, clamp)


def _ratio_metrics(inputs: LossInputs, lr: Tensor) -> dict[str, Tensor]:
    mask = inputs.mask
    return {"ppo_kl": masked_mean(-lr, mask).detach(), "ratio_mean": masked_mean(lr.exp(), mask).detach()}


def _dual_clip(loss: Tensor, adv: Tensor, clip_ratio_c: float | None) -> tuple[Tensor, Tensor]:
    """Dual-clip for A < 0: min(loss, -A c). Returns (loss, bool mask of dual-clipped tokens)."""
    if clip_ratio_c is None:
        return loss, torch.zeros_like(loss, dtype=torch.bool)
    if clip_ratio_c <= 1.0:
        raise ValueError(f"clip_ratio_c must be > 1 (or None to disable dual-clip), got {clip_ratio_c}")
    bound = -adv * clip_ratio_c
    dual = (adv < 0) & (loss > bound)
    return torch.where(adv < 0, torch.minimum(loss, bound), loss), dual


def _clip_family(
    inputs: LossInputs,
    clipped_ratio: Tensor,
    ratio: Tensor,
    lr: Tensor,
    clip_ratio_c: float | None,
    cut_gradient: bool,
) -> PolicyTerm:
    """max(-A r, -A clip(r)) plus dual-clip, with clip-fraction metrics shared by PPO and GPPO."""
    inputs.require("advantages", by="policy loss")
    adv, mask = inputs.advantages.detach(), inputs.mask
    unclipped = -adv * ratio
    clipped = -adv * clipped_ratio
    clip_hit = clipped > unclipped
    loss, dual = _dual_clip(torch.maximum(unclipped, clipped), adv, clip_ratio_c)
    metrics = {
        "clip_frac": masked_mean(clip_hit.to(mask.dtype), mask).detach(),
        "clip_frac_upper": masked_mean((clip_hit & (adv > 0)).to(mask.dtype), mask).detach(),
        "clip_frac_lower": masked_mean((clip_hit & (adv < 0)).to(mask.dtype), mask).detach(),
        "clip_frac_dual": masked_mean(dual.to(mask.dtype), mask).detach(),
        **_ratio_metrics(inputs, lr),
    }
    cut = (clip_hit | dual) if cut_gradient else dual
    return PolicyTerm(loss_BT=loss, clipped_BT=cut & mask.bool(), metrics=metrics)


@register_policy_loss("ppo_clip")
def ppo_clip(
    inputs: LossInputs,
    *,
    eps_low: float = 0.2,
    eps_high: float = 0.2,
    clip_ratio_c: float | None = None,
    log_ratio_clamp: float = 20.0,
    generator: torch.Generator | None = None,
) -> PolicyTerm:
    """PPO/GRPO clipped surrogate (verl `compute_policy_loss_vanilla`).

    L = max(-A r, -A clip(r, 1-eps_low, 1+eps_high)); eps_high > eps_low is DAPO clip-higher (0.2/0.28).
    Dual-clip for A < 0: L = min(L, -A c) with c = `clip_ratio_c` (verl default 3, DAPO/entropy recipes 10);
    None (default) disables it, as in the original GRPO/PPO. Metrics: clip_frac (verl pg_clipfrac),
    clip_frac_upper (A > 0), clip_frac_lower (A < 0), clip_frac_dual (verl pg_clipfrac_lower), ppo_kl.
    """
    lr = log_ratio(inputs, log_ratio_clamp)
    ratio = torch.exp(lr)
    return _clip_family(
        inputs, ratio.clamp(1.0 - eps_low, 1.0 + eps_high), ratio, lr, clip_ratio_c, cut_gradient=True
    )


@register_policy_loss("pg")
def pg(
    inputs: LossInputs, *, log_ratio_clamp: float = 20.0, generator: torch.Generator | None = None
) -> PolicyTerm:
    """Unclipped importance-weighted policy gradient L = -A r (the base of the reference KL-Cov loss)."""
    inputs.require("advantages", by="pg")
    lr = log_ratio(inputs, log_ratio_clamp)
    loss = -inputs.advantages.detach() * torch.exp(lr)
    return PolicyTerm(
        loss_BT=loss, clipped_BT=torch.zeros_like(loss, dtype=torch.bool), metrics=_ratio_metrics(inputs, lr)
    )


@register_policy_loss("gppo")
def gppo(
    inputs: LossInputs,
    *,
    eps_low: float = 0.2,
    eps_high: float = 0.2,
    clip_ratio_c: float | None = 10.0,
    log_ratio_clamp: float = 20.0,
    generator: torch.Generator | None = None,
) -> PolicyTerm:
    """GPPO, gradient-preserving clipping (Klear-Reasoner, arXiv 2508.07629).

    clip_GP(r) equals clip(r) in value, but outside [1-eps_low, 1+eps_high] it is (1 +- eps) r / sg(r), so a
    clipped token keeps the bounded gradient (1 +- eps) grad log pi instead of 0. Dual-clip c = 10 as in the
    released scripts; a dual-clipped token has zero gradient.
    """
    lr = log_ratio(inputs, log_ratio_clamp)
    ratio = torch.exp(lr)
    r_sg = ratio.detach()
    low, high = 1.0 - eps_low, 1.0 + eps_high
    gp = torch.where(r_sg < low, low * ratio / r_sg, torch.where(r_sg > high, high * ratio / r_sg, ratio))
    return _clip_family(inputs, gp, ratio, lr, clip_ratio_c, cut_gradient=False)


@register_policy_loss("gspo")
def gspo(
    inputs: LossInputs,
    *,
    eps_low: float = 3e-4,
    eps_high: float = 4e-4,
    generator: torch.Generator | None = None,
) -> PolicyTerm:
    """GSPO, sequence-level ratio (arXiv 2507.18071; verl `compute_policy_loss_gspo`).

    s_i = exp(mean_t log r_{i,t}); implemented in the GSPO-token form log s_{i,t} = lp - sg(lp) + sg(log s_i)
    (value s_i, gradient through each token), clamped at log s <= 10, no dual-clip. With a per-sequence
    advantage this has exactly the gradient of sequence-level GSPO. Aggregation is forced to
    seq_mean_token_mean whatever the spec says; empty responses are guarded by a length clamp of 1.
    """
    inputs.require("advantages", by="gspo")
    adv, mask = inputs.advantages.detach(), inputs.mask
    lr = inputs.logprobs - inputs.old_logprobs.detach()
    seq_lr = (torch.where(mask.bool(), lr, torch.zeros_like(lr))).sum(-1) / mask.sum(-1).clamp(min=1)
    log_s = (inputs.logprobs - inputs.logprobs.detach() + seq_lr.detach().unsqueeze(-1)).clamp(max=10.0)
    s = torch.exp(log_s)
    unclipped = -adv * s
    clipped = -adv * s.clamp(1.0 - eps_low, 1.0 + eps_high)
    clip_hit = clipped > unclipped
    metrics = {
        "clip_frac": masked_mean(clip_hit.to(mask.dtype), mask).detach(),
        "clip_frac_upper": masked_mean((clip_hit & (adv > 0)).to(mask.dtype), mask).detach(),
        "clip_frac_lower": masked_mean((clip_hit & (adv < 0)).to(mask.dtype), mask).detach(),
        "ppo_kl": masked_mean(-lr.detach(), mask),
    }
    return PolicyTerm(
        loss_BT=torch.maximum(unclipped, clipped),
        clipped_BT=clip_hit & mask.bool(),
        metrics=metrics,
        aggregation="seq_mean_token_mean",
    )
