"""KV-cache sizing from the model and the batch (hand-computed)."""

from __future__ import annotations

from types import SimpleNamespace

from rlvr.config.rollout import RolloutConfig
from rlvr.rollout.kv_cache import MIB, bytes_per_token, kv_cache_bytes

# SmolLM2-135M: 30 layers, 9 heads of 64 over 576 hidden, 3 KV heads.
SMOLLM2 = SimpleNamespace(num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3, hidden_size=576)


def test_bytes_per_token_counts_k_and_v_of_every_layer():
    assert bytes_per_token(SMOLLM2, "float32") == 2 * 30 * 3 * 64 * 4 == 46080
    assert bytes_per_token(SMOLLM2, "bfloat16") == 23040
    no_gqa = SimpleNamespace(num_hidden_layers=2, num_attention_heads=4, hidden_size=64, head_dim=None)
    assert bytes_per_token(no_gqa, "float32") == 2 * 2 * 4 * 16 * 4


def test_the_cache_holds_max_num_seqs_full_sequences_within_floor_and_cap():
    gib = 2**30
    # 256 sequences of 304 tokens: 46080 * 256 * 304 bytes = 3420 MiB.
    assert (
        kv_cache_bytes(SMOLLM2, "float32", max_num_seqs=256, max_model_len=304, memory_bytes=24 * gib)
        == 3420 * MIB
    )
    assert (
        kv_cache_bytes(SMOLLM2, "float32", max_num_seqs=256, max_model_len=304, memory_bytes=8 * gib)
        == 2 * gib
    )
    assert (
        kv_cache_bytes(SMOLLM2, "float32", max_num_seqs=1, max_model_len=16, memory_bytes=8 * gib) == 64 * MIB
    )


def test_the_recipe_default_is_sized_from_the_model():
    assert RolloutConfig().kv_cache_memory_mb is None
    assert RolloutConfig(kv_cache_memory_mb=512).kv_cache_memory_mb == 512
