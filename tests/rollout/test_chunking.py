"""Pure-logic tests: layer-preserving chunking of weight pushes and the rollout config section."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from pydantic import ValidationError

from rlvr.config.rollout import RolloutConfig
from rlvr.rollout.engine import chunk_by_layer, layer_of


def _qwen_like(num_layers: int) -> list[tuple[str, torch.Tensor]]:
    names = ["model.embed_tokens.weight"]
    for i in range(num_layers):
        for part in (
            "self_attn.q_proj.weight",
            "self_attn.k_proj.weight",
            "self_attn.v_proj.weight",
            "mlp.gate_proj.weight",
            "mlp.up_proj.weight",
            "input_layernorm.weight",
        ):
            names.append(f"model.layers.{i}.{part}")
    names += ["model.norm.weight", "lm_head.weight"]
    return [(n, torch.zeros(4, 4)) for n in names]  # 64 bytes each


def test_layer_of_parses_decoder_index_only() -> None:
    assert layer_of("model.layers.12.self_attn.q_proj.weight") == 12
    assert layer_of("layers.0.mlp.up_proj.weight") == 0
    assert layer_of("model.embed_tokens.weight") is None
    assert layer_of("lm_head.weight") is None
    assert layer_of("model.sublayers_x.3.weight") is None


def test_single_chunk_without_bound() -> None:
    tensors = _qwen_like(3)
    chunks = list(chunk_by_layer(tensors, None))
    assert len(chunks) == 1 and [n for n, _ in chunks[0]] == [n for n, _ in tensors]


@pytest.mark.parametrize("max_bytes", [1, 64 * 6, 64 * 13, 10**9])
def test_chunks_never_split_a_layer(max_bytes: int) -> None:
    tensors = _qwen_like(4)
    chunks = list(chunk_by_layer(tensors, max_bytes))
    assert [n for c in chunks for n, _ in c] == [n for n, _ in tensors]  # nothing lost, order kept
    owner: dict[int, int] = {}
    for ci, chunk in enumerate(chunks):
        for name, _ in chunk:
            layer = layer_of(name)
            if layer is not None:
                assert owner.setdefault(layer, ci) == ci, f"layer {layer} split across chunks"
    if max_bytes == 1:
        assert len(chunks) == 6  # embed | layer0 | layer1 | layer2 | layer3 | norm+lm_head


def test_non_contiguous_layer_is_rejected() -> None:
    tensors = _qwen_like(2)
    q0 = tensors.pop(1)  # move layer 0's q_proj after layer 1
    tensors.insert(10, q0)
    with pytest.raises(ValueError, match="layer 0"):
        list(chunk_by_layer(tensors, None))


def test_rollout_config_defaults_and_strictness() -> None:
    cfg = RolloutConfig()
    assert cfg.sync.verify and cfg.sync.tolerance is None
    assert cfg.sync.tolerance_for("float32") == 1e-4 and cfg.sync.tolerance_for("bfloat16") == 5e-2
    assert RolloutConfig(sync={"tolerance": 1e-3}).sync.tolerance_for("bfloat16") == 1e-3
    assert cfg.max_model_len == cfg.max_prompt_tokens + cfg.max_response_tokens
    with pytest.raises(ValidationError):
        RolloutConfig(kv_cache_mb=64)
    with pytest.raises(ValidationError):
        RolloutConfig(sync={"tolerance": 0})
    with pytest.raises(ValidationError):
        RolloutConfig(top_p=1.5)


def test_config_and_rollout_packages_import_without_torch() -> None:
    code = (
        "import sys, rlvr.config.rollout, rlvr.rollout; "
        "bad = [m for m in ('torch', 'vllm', 'ray', 'deepspeed') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
