"""Loss aggregation (pipeline stage E; verl `agg_loss`, spec §0.1, T3).

Every mode is registered with `@register_aggregation` and has the signature
`fn(loss_BT, mask_BT, *, token_normaliser, seq_normaliser, loss_scale_factor) -> scalar`.

For data-parallel / micro-batch invariance pass the normalisers from outside: a learner that accumulates
micro-batch gradients by summation and averages across `world` ranks passes
`token_normaliser = global_minibatch_tokens / world` (token_mean) and `seq_normaliser = global_nonempty_seqs / world`
(seq modes). Left None, they default to this call's own counts.

Mode names map to verl's: token_mean = "token-mean" (DAPO), seq_mean_token_mean = "seq-mean-token-mean"
(DeepSeekMath GRPO), seq_mean_token_sum, seq_mean_token_sum_norm = Dr. GRPO's constant normaliser.
"""

from __future__ import annotations

import torch
from torch import Tensor

from rlvr.algo.contract import masked_sum
from rlvr.algo.registry import AGGREGATIONS, register_aggregation


def _row_sums(loss_BT: Tensor, mask_BT: Tensor) -> Tensor:
    return torch.where(mask_BT.bool(), loss_BT, torch.zeros_like(loss_BT)).sum(-1)


def _seq_count(mask_BT: Tensor, seq_normaliser: float | Tensor | None) -> float | Tensor:
    if seq_normaliser is not None:
        return seq_normaliser
    # Empty responses are excluded from N_seq (verl).
    return (mask_BT.sum(-1) > 0).sum().clamp(min=1)


@register_aggregation("token_mean")
def token_mean(
    loss_BT, mask_BT, *, token_normaliser=None, seq_normaliser=None, loss_scale_factor=None
) -> Tensor:
    """sum_{i,t} L m / N_tok, N_tok = `token_normaliser` or this batch's token count."""
    n = token_normaliser if token_normaliser is not None else mask_BT.sum().clamp(min=1)
    return masked_sum(loss_BT, mask_BT) / n


@register_aggregation("seq_mean_token_mean")
def seq_mean_token_mean(
    loss_BT, mask_BT, *, token_normaliser=None, seq_normaliser=None, loss_scale_factor=None
) -> Tensor:
    """(1/N_seq) sum_i (1/|o_i|) sum_t L; empty rows add 0 and are not counted."""
    per_seq = _row_sums(loss_BT, mask_BT) / mask_BT.sum(-1).clamp(min=1)
    return per_seq.sum() / _seq_count(mask_BT, seq_normaliser)


@register_aggregation("seq_mean_token_sum")
def seq_mean_token_sum(
    loss_BT, mask_BT, *, token_normaliser=None, seq_normaliser=None, loss_scale_factor=None
) -> Tensor:
    """(1/N_seq) sum_i sum_t L."""
    return _row_sums(loss_BT, mask_BT).sum() / _seq_count(mask_BT, seq_normaliser)


@register_aggregation("seq_mean_token_sum_norm")
def seq_mean_token_sum_norm(
    loss_BT, mask_BT, *, token_normaliser=None, seq_normaliser=None, loss_scale_factor=None
) -> Tensor:
    """sum_{i,t} L / C with C = `loss_scale_factor` (default: the padded width T). Not divided by N_seq (verl)."""
    c = loss_scale_factor if loss_scale_factor is not None else loss_BT.shape[-1]
    return masked_sum(loss_BT, mask_BT) / c


def aggregate(
    loss_BT: Tensor,
    mask_BT: Tensor,
    mode: str = "token_mean",
    *,
    token_normaliser: float | Tensor | None = None,
    seq_normaliser: float | Tensor | None = None,
    loss_scale_factor: float | None = None,
) -> Tensor:
    """Reduce a per-token loss to a scalar with the named mode (see module docstring)."""
    fn = AGGREGATIONS.get(mode)
    return fn(
        loss_BT,
        mask_BT.to(loss_BT.dtype),
        token_normaliser=token_normaliser,
        seq_normaliser=seq_normaliser,
        loss_scale_factor=loss_scale_factor,
    )
