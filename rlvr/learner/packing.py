"""Supervised (SFT) micro-batches: samples packed by the project's one packer (``rlvr.batch``), then collated.

The budget counts padded tokens (rows x longest row), because that is what a forward pass costs. RL batches
travel as ``rlvr.learner.work.LearnerBatch`` instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rlvr.batch import pack_micro_batches


def collate(samples: Sequence[dict[str, Any]], pad_token_id: int) -> dict[str, Any]:
    """Right-pad a list of samples into a micro-batch of tensors.

    Each sample has ``input_ids`` (list of ints) and optionally per-token lists of the same length
    (e.g. ``response_mask``, ``old_logprobs``, ``advantages``) and per-sample scalars. Per-token
    fields are padded with 0 (``input_ids`` with ``pad_token_id``); ``attention_mask`` is added.

    Args:
        samples: The rows of one micro-batch.
        pad_token_id: Id used to pad ``input_ids``.

    Returns:
        A dict of tensors: ``[B, T]`` for per-token fields, ``[B]`` for scalars.
    """
    import torch

    width = max(len(s["input_ids"]) for s in samples)
    out: dict[str, Any] = {}
    keys = list(samples[0].keys())
    for key in keys:
        first = samples[0][key]
        if isinstance(first, (list, tuple)) or (hasattr(first, "dim") and first.dim() == 1):
            is_float = any(isinstance(v, float) for s in samples for v in list(s[key])[:1]) or (
                hasattr(first, "dtype") and first.dtype.is_floating_point
            )
            pad = pad_token_id if key == "input_ids" else 0
            dtype = torch.float32 if is_float else torch.long
            t = torch.full((len(samples), width), pad, dtype=dtype)
            for i, s in enumerate(samples):
                vals = torch.as_tensor(list(s[key]), dtype=dtype)
                if len(vals) != len(s["input_ids"]):
                    raise ValueError(
                        f"per-token field {key!r} has {len(vals)} values for {len(s['input_ids'])} tokens"
                    )
                t[i, : len(vals)] = vals
            out[key] = t
        else:
            out[key] = torch.as_tensor([s[key] for s in samples])
    mask = torch.zeros((len(samples), width), dtype=torch.long)
    for i, s in enumerate(samples):
        mask[i, : len(s["input_ids"])] = 1
    out["attention_mask"] = mask
    return out


def make_micro_batches(
    samples: Sequence[dict[str, Any]], micro_batch_tokens: int, pad_token_id: int, *, sort: bool = True
) -> list[dict[str, Any]]:
    """Pack samples under a token budget (``rlvr.batch.pack_micro_batches``) and collate each micro-batch."""
    lengths = [len(s["input_ids"]) for s in samples]
    groups = pack_micro_batches(lengths, micro_batch_tokens, longest_first=sort)
    return [collate([samples[i] for i in g], pad_token_id) for g in groups]
