"""Loss aggregation (pipeline stage E; verl `agg_loss`; docs/algorithms.md "Aggregation modes").

Every mode is registered with `@register_aggregation` and has the signature
`fn(loss_BT, mask_BT, *, token_normaliser, seq_normaliser, loss_scale_factor) -> scalar`.

For data-parallel / micro-batch invariance pass the normalisers from outside: a learner that accumulates
micro-batch gradients by summation and averages across `world` ranks passes
`token_normaliser = global_minibatch_tokens / world` (token_mean) and `seq_normaliser = global_nonempty_seqs / world`
(seq modes). Left None, they default to this call's own counts. Counted over the whole mini-batch, they make
the gradient of every mode independent of how the mini-batch is cut into ranks and micro-batches.

Mode names map to verl's: token_mean = "token-mean" (DAPO), seq_mean_token_mean = "seq-mean-token-mean"
(DeepSeekMath GRPO), seq_mean_token_sum, seq_mean_token_sum_norm = Dr. GRPO (token sum over a constant C, mean
over sequences).
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
    """Dr. GRPO: (1/N_seq) sum_i sum_t L / C, C = `loss_scale_factor` (default: the padded width T).

    The constant C replaces the per-response length of seq_mean_token_mean; the sum over responses is still a
    mean over the N_seq sequences of the global mini-batch (Dr. GRPO's objective and its release), so the loss
    scale does not grow with the batch. Leave C at None only for single-call use: the padded width differs
    between micro-batches (the learner passes the generation budget).
    """
    c = loss_scale_factor if loss_scale_factor is not None else loss_BT.shape[-1]
    return masked_sum(loss_BT, mask_BT) / (c * _seq_count(mask_BT, seq_normaliser))


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
