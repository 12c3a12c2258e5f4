"""Sequences → padded tensors for a causal LM, and back to the response part.

Layout: every sample is ``prompt + response`` left-aligned in an ``[B, L]`` tensor (right padding), so
response token ``j`` of sample ``b`` sits at position ``prompt_len[b] + j``. Response-aligned tensors are
``[B, T]`` with ``T = max response length``; ragged per-sample lists travel between driver and ranks.
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


def gather_response(values_BL: Tensor, prompt_lens_B: Tensor, resp_width: int) -> Tensor:
    """Full-sequence-aligned [B,L] per-token values (value at p belongs to token p) -> response-aligned [B,T]."""
    seq_width = values_BL.shape[1]
    offsets = torch.arange(resp_width, device=values_BL.device).unsqueeze(0)
    pos = (prompt_lens_B.to(values_BL.device).unsqueeze(1) + offsets).clamp(max=seq_width - 1)
    return torch.gather(values_BL, 1, pos)


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
