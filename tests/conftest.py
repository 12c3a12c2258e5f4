"""Suite-wide setup: CPU runtime defaults for the real stack, and `gpu` tests skipped without CUDA."""

from __future__ import annotations

import importlib.util

import pytest

from rlvr.devices import apply_runtime_env

# Before any test imports vLLM: the CPU engine's settings, and loopback for the local Ray clusters tests start.
apply_runtime_env("cpu", local_cluster=True)


def _cuda_available() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return torch.cuda.is_available()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not any(item.get_closest_marker("gpu") for item in items) or _cuda_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if item.get_closest_marker("gpu"):
            item.add_marker(skip)
