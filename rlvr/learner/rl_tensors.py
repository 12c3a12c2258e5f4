"""Response-aligned tensors: from sequence-aligned ``[B, L]`` values, and between ragged lists and ``[B, T]``.

Layout: every sample is ``prompt + response`` left-aligned in an ``[B, L]`` tensor (right padding, built by
``rlvr.learner.work.LearnerBatch.micro``), so response token ``j`` of sample ``b`` sits at position
``prompt_len[b] + j``. Response-aligned tensors are ``[B, T]`` with ``T = max response length``.
"""

from __future__ import annotations

import torch
from torch import Tensor


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
