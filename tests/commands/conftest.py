"""Builders for fake runs: HF model dirs with real safetensors bytes and checkpoints committed by the real manager."""

from __future__ import annotations

import argparse
import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from rlvr.checkpoint.manager import CheckpointManager

TINY_CONFIG = {
    "model_type": "qwen2",
    "architectures": ["Qwen2ForCausalLM"],
    "vocab_size": 16,
    "hidden_size": 8,
    "intermediate_size": 16,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "max_position_embeddings": 64,
}


def safetensors_bytes(tensors: dict[str, int]) -> bytes:
    """A valid safetensors file of float32 tensors, name -> element count (values: 0..n-1)."""
    header, data, offset = {}, b"", 0
    for name, count in tensors.items():
        blob = struct.pack(f"<{count}f", *range(count))
        header[name] = {"dtype": "F32", "shape": [count], "data_offsets": [offset, offset + len(blob)]}
        data += blob
        offset += len(blob)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + data


def write_hf_dir(path: Path, tag: str = "a") -> Path:
    """A minimal HF model directory: a qwen2 config, one safetensors file, a marker naming it."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(TINY_CONFIG))
    (path / "model.safetensors").write_bytes(safetensors_bytes({"embed.weight": 12, "norm.weight": 4}))
    (path / "tag.txt").write_text(tag)
    return path


def commit_checkpoint(
    root: Path, step: int, *, recipe: dict[str, Any] | None = None, hf: bool = True
) -> Path:
    """Commit a checkpoint for ``step`` under ``root`` through the real CheckpointManager."""
    manager = CheckpointManager(root)
    staged = manager.stage(step)
    if hf:
        write_hf_dir(staged / "hf", tag=f"step{step}")
    (staged / "trainer_state.json").write_text(json.dumps({"step": step}))
    if recipe is not None:
        (staged / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    return manager.commit(staged, step, manifest={"step": step})


@pytest.fixture
def hf_dir() -> Callable[..., Path]:
    """``write_hf_dir`` (a fixture, so test modules need not import a conftest by name)."""
    return write_hf_dir


@pytest.fixture
def checkpoint() -> Callable[..., Path]:
    """``commit_checkpoint``."""
    return commit_checkpoint


@pytest.fixture
def parse_args() -> Callable[[Any, list[str]], argparse.Namespace]:
    """Parse argv with a command module's own ``add_arguments``."""

    def parse(module: Any, argv: list[str]) -> argparse.Namespace:
        parser = argparse.ArgumentParser(prog=f"rlvr {module.__name__.rsplit('.', 1)[-1]}")
        module.add_arguments(parser)
        return parser.parse_args(argv)

    return parse
