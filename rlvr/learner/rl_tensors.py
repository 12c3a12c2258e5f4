"""Sequences → padded tensors for a causal LM, and per-token logprobs / entropy of the response part.

Layout: every sample is ``prompt + response`` left-aligned in an ``[B, L]`` tensor (right padding). The logit
at position ``p`` predicts token ``p + 1``, so response token ``j`` of sample ``b`` is scored by the logit at
``prompt_len[b] - 1 + j``. Response-aligned outputs are ``[B, T]`` with ``T = max response length``.
"""

from __future__ import annotations

import torch
from torch import Tensor


def pad_sequences(
    prompt_ids: list[list[int]], response_ids: list[list[int]], pad_id: int
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Return input_ids [B,L], attention_mask [B,L], prompt_lens [B], response_mask [B,T]."""
    lengths = [len(p) + len(r) for p, r in zip(prompt_ids, response_ids)]
    width = max(lengths, default=1)
    resp_width = max((len(r) for r in response_ids), default=0)
    batch = len(prompt_ids)
    input_ids = torch.full((batch, width), pad_id, dtype=torch.long)
    attention = torch.zeros((batch, width), dtype=torch.long)
    response_mask = torch.zeros((batch, max(resp_width, 1)), dtype=torch.float32)
    for b, (p, r) in enumerate(zip(prompt_ids, response_ids)):
        seq = list(p) + list(r)
        input_ids[b, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        attention[b, : len(seq)] = 1
        response_mask[b, : len(r)] = 1.0
    prompt_lens = torch.tensor([len(p) for p in prompt_ids], dtype=torch.long)
    return input_ids, attention, prompt_lens, response_mask


def response_positions(prompt_lens: Tensor, resp_width: int, seq_width: int) -> Tensor:
    """[B,T] index of the logit that scores each response token (clamped into range for padding)."""
    offsets = torch.arange(resp_width).unsqueeze(0)
    return (prompt_lens.unsqueeze(1) - 1 + offsets).clamp(0, seq_width - 1)


def logprobs_and_entropy(
    logits_BLV: Tensor,
    input_ids_BL: Tensor,
    prompt_lens_B: Tensor,
    resp_width: int,
    *,
    with_entropy: bool,
    temperature: float = 1.0,
) -> tuple[Tensor, Tensor | None]:
    """Per-response-token logprobs [B,T] (and full-vocabulary entropy [B,T]) in float32.

    Only the response rows of the logits are gathered before the softmax, so memory is ``B·T·V``, not
    ``B·L·V``. The entropy is computed row-chunk by row-chunk from logsumexp to bound peak memory.
    """
    batch, seq_width, vocab = logits_BLV.shape
    pos = response_positions(prompt_lens_B, resp_width, seq_width)
    idx = pos.unsqueeze(-1).expand(batch, resp_width, vocab)
    logits = torch.gather(logits_BLV, 1, idx).float()
    if temperature != 1.0:
        logits = logits / temperature
    target_pos = (pos + 1).clamp(max=seq_width - 1)
    targets = torch.gather(input_ids_BL, 1, target_pos)
    lse = torch.logsumexp(logits, dim=-1)
    logprobs = torch.gather(logits, -1, targets.unsqueeze(-1)).squeeze(-1) - lse
    entropy = None
    if with_entropy:
        chunks = []
        for rows, lse_rows in zip(logits.split(8, dim=0), lse.split(8, dim=0)):
            probs = torch.softmax(rows, dim=-1)
            chunks.append(lse_rows - (probs * rows).sum(-1))
        entropy = torch.cat(chunks, dim=0)
    return logprobs, entropy


def to_padded(values: list[list[float]], width: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """Ragged per-token lists → [B, width] tensor, zero-padded."""
    out = torch.zeros((len(values), max(width, 1)), dtype=dtype)
    for b, row in enumerate(values):
        if row:
            out[b, : len(row)] = torch.tensor(row, dtype=dtype)
    return out


def from_padded(tensor_BT: Tensor, lengths: list[int]) -> list[list[float]]:
    """[B,T] → ragged lists of the first `lengths[b]` values (the inverse of `to_padded`)."""
    rows = tensor_BT.detach().to(torch.float64).cpu().tolist()
    return [row[:n] for row, n in zip(rows, lengths)]
