"""Token-level loss modifiers applied on top of any per-token policy loss: Clip-Cov, KL-Cov, ERC.

Each is registered with `@register_loss_modifier("name")` and has the signature
`fn(inputs: LossInputs, term: PolicyTerm, *, generator=None, **hyperparameters) -> PolicyTerm`.
They apply in the order the spec lists them; put ERC last so it masks the final per-token loss.
Math and knobs: docs/algorithms.md, "Loss modifiers" (Entropy Mechanism, arXiv 2505.22617; ERC,
arXiv 2512.05591).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from rlvr.algo.contract import LossInputs, PolicyTerm, masked_mean
from rlvr.algo.registry import register_loss_modifier


def token_covariance(inputs: LossInputs) -> Tensor:
    """[B,T] centred covariance (A - mean A)(lp - mean lp), means over valid tokens, all detached (eq. 10).

    Statistics are those of this call's tokens, so they depend on the micro-batch (as in both references).
    """
    inputs.require("advantages", by="covariance modifiers")
    mask = inputs.mask
    adv = inputs.advantages.detach()
    lp = inputs.logprobs.detach()
    return (adv - masked_mean(adv, mask)) * (lp - masked_mean(lp, mask))


def _with(term: PolicyTerm, loss_BT: Tensor, **metrics: float | Tensor) -> PolicyTerm:
    return dataclasses.replace(term, loss_BT=loss_BT, metrics={**term.metrics, **metrics})


@register_loss_modifier("clip_cov")
def clip_cov(
    inputs: LossInputs,
    term: PolicyTerm,
    *,
    ratio: float = 2e-4,
    lb: float = 1.0,
    ub: float = 5.0,
    generator: torch.Generator | None = None,
) -> PolicyTerm:
    """Clip-Cov (verl `compute_policy_loss_clip_cov`; docs/algorithms.md, "Clip-Cov and KL-Cov").

    Among valid tokens not already clipped by the base loss with lb < cov < ub (strict), pick
    n = max(int(ratio * n_valid), 1) uniformly at random and zero their loss, value and gradient (the token
    still counts in the token-mean denominator). The pick uses `generator` so a seeded run is reproducible.
    The reference pairs it with ppo_clip eps 1/1 and no dual-clip.

    Args:
        ratio: fraction of valid tokens to clip (2e-4).
        lb, ub: covariance window (1, 5).
    """
    mask_b = inputs.response_mask.bool()
    cov = token_covariance(inputs)
    clipped = term.clipped_BT if term.clipped_BT is not None else torch.zeros_like(mask_b)
    cand = mask_b & ~clipped & (cov > lb) & (cov < ub)
    n_clip = max(int(ratio * int(mask_b.sum())), 1)
    cand_idx = cand.flatten().nonzero().squeeze(1)
    keep = torch.ones(cov.numel(), dtype=term.loss_BT.dtype, device=cov.device)
    if cand_idx.numel() > 0:
        perm = torch.randperm(cand_idx.numel(), generator=generator, device="cpu").to(cand_idx.device)
        keep[cand_idx[perm[:n_clip]]] = 0.0
    keep = keep.view_as(cov)
    picked = (keep == 0).to(inputs.mask.dtype)
    return _with(
        term,
        term.loss_BT * keep,
        cov_clipped=picked.sum().detach(),
        cov_clip_frac=masked_mean(picked, inputs.mask).detach(),
    )


@register_loss_modifier("kl_cov")
def kl_cov(
    inputs: LossInputs,
    term: PolicyTerm,
    *,
    ratio: float = 2e-3,
    coef: float = 1.0,
    generator: torch.Generator | None = None,
) -> PolicyTerm:
    """KL-Cov (verl `compute_policy_loss_kl_cov`; docs/algorithms.md, "Clip-Cov and KL-Cov").

    Adds coef * |log pi - log pi_old| to the k = max(1, int(n_valid * ratio)) valid tokens of highest
    covariance. Unit: `ratio` is a FRACTION of valid tokens (verl's `kl_cov_ratio`, 2e-3 for 7B, 2e-4 for
    32B), not PRIME's percent `k_percent` (0.2 there == 2e-3 here). The reference applies it on the unclipped
    `pg` loss; on top of ppo_clip the clip also applies. Ties in top-k break in torch's order.
    """
    mask_b = inputs.response_mask.bool()
    n_valid = int(mask_b.sum())
    penalised = torch.zeros_like(inputs.mask)
    if n_valid > 0:
        cov = torch.where(mask_b, token_covariance(inputs), torch.full_like(inputs.mask, -torch.inf))
        k = min(max(1, int(n_valid * ratio)), n_valid)
        penalised.view(-1)[torch.topk(cov.flatten(), k).indices] = 1.0
    abs_lr = (inputs.logprobs - inputs.old_logprobs.detach()).abs()
    return _with(
        term,
        term.loss_BT + coef * abs_lr * penalised,
        cov_penalised=penalised.sum().detach(),
        abs_log_ratio=masked_mean(abs_lr.detach(), inputs.mask),
    )


@register_loss_modifier("erc", needs_old_entropy=True)
def erc(
    inputs: LossInputs,
    term: PolicyTerm,
    *,
    low: float = 0.05,
    high: float = 0.05,
    generator: torch.Generator | None = None,
) -> PolicyTerm:
    """Entropy Ratio Clipping (Kwai-Klear/ERC `grpo_erc`/`gppo_erc`; docs/algorithms.md, "ERC"): a gradient mask.

    rho = (H + 1e-8) / (H_old + 1e-8) per token (full-vocabulary entropies); tokens with
    1 - low < rho < 1 + high (strict) keep their gradient, the rest are detached: the loss VALUE and the
    denominator are unchanged. On-policy (one update per rollout) rho is ~1 and ERC is a no-op.
    """
    inputs.require("entropy", "old_entropy", by="erc")
    rho = (inputs.entropy.detach() + 1e-8) / (inputs.old_entropy.detach() + 1e-8)
    keep = (rho > 1.0 - low) & (rho < 1.0 + high) & inputs.response_mask.bool()
    loss = torch.where(keep, term.loss_BT, term.loss_BT.detach())
    return _with(term, loss, erc_kept_frac=masked_mean(keep.to(inputs.mask.dtype), inputs.mask).detach())
