"""Process-level runtime defaults for the real stack (vLLM, DeepSpeed, torch) on this device.

On CPU the vLLM build needs an explicit KV-cache size, both cores, loopback sockets and an
in-process engine for fast start-up (docs/cpu.md says why). Values already set in the
environment win, so a cluster launcher can override any of them.
"""

from __future__ import annotations

import os

CPU_DEFAULTS = {
    "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
    "VLLM_CPU_KVCACHE_SPACE": "1",
    "VLLM_CPU_OMP_THREADS_BIND": "nobind",
    "VLLM_HOST_IP": "127.0.0.1",
    "OMP_NUM_THREADS": str(os.cpu_count() or 2),
    "TOKENIZERS_PARALLELISM": "false",
    "RAY_AUTH_MODE": "disabled",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
}


def has_cuda() -> bool:
    """True when a CUDA device is usable. Imports torch, so call it only on the heavy path."""
    import torch

    return torch.cuda.is_available()


def apply_runtime_env(device: str = "auto") -> dict[str, str]:
    """Set the environment defaults for ``device`` ("cpu", "cuda" or "auto") and return them.

    Only unset variables are written. Call before importing vLLM.
    """
    if device == "auto":
        device = "cuda" if has_cuda() else "cpu"
    applied: dict[str, str] = {}
    if device == "cpu":
        for key, value in CPU_DEFAULTS.items():
            if key not in os.environ:
                os.environ[key] = value
            applied[key] = os.environ[key]
    return applied
