"""Sizing the rollout engine's KV cache on CPU from the model and the batch it must hold.

vLLM's CPU platform needs an explicit KV-cache size (its memory probe misreads virtual machines). A fixed
default is wrong both ways: 64 MiB held ~1,400 tokens of SmolLM2-135M (about 5 concurrent 280-token
sequences), while a 1 M-parameter model needs a few MiB. So the default is what `max_num_seqs` sequences of
`max_model_len` tokens take, capped at a quarter of the machine's memory (per engine).
"""

from __future__ import annotations

import os
from typing import Any

MIB = 2**20
FLOOR_BYTES = 64 * MIB  # vLLM needs a few blocks whatever the model; also the old default
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


def bytes_per_token(hf_config: Any, dtype: str) -> int:
    """K and V of every layer for one token: 2 x layers x KV heads x head dim x dtype bytes."""
    heads = hf_config.num_attention_heads
    kv_heads = getattr(hf_config, "num_key_value_heads", None) or heads
    head_dim = getattr(hf_config, "head_dim", None) or hf_config.hidden_size // heads
    return 2 * hf_config.num_hidden_layers * kv_heads * head_dim * DTYPE_BYTES.get(dtype, 4)


def machine_memory_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def kv_cache_bytes(
    hf_config: Any, dtype: str, *, max_num_seqs: int, max_model_len: int, memory_bytes: int | None = None
) -> int:
    """Bytes for `max_num_seqs` full-length sequences, at least `FLOOR_BYTES`, at most a quarter of memory."""
    want = bytes_per_token(hf_config, dtype) * max_num_seqs * max_model_len
    cap = (memory_bytes if memory_bytes is not None else machine_memory_bytes()) // 4
    return int(max(FLOOR_BYTES, min(want, cap)))
