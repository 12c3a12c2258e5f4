"""Process-level runtime settings for the real stack (vLLM, DeepSpeed, torch, Ray), and the one line that
reports them at start.

rlvr sets only what its own way of running needs, and only where nothing is set already (so a launcher or a
user overrides any of it by exporting the variable):

- On CPU, what the vLLM CPU build needs to run in-process next to the learners on a small machine
  (`CPU_DEFAULTS`). The KV-cache size is not among them: every engine passes `kv_cache_memory_bytes`.
- For the private single-machine Ray cluster that `rlvr train` starts when `resources.ray_address` is unset
  (`LOCAL_CLUSTER_DEFAULTS`): the cluster listens on 127.0.0.1 only, so vLLM uses loopback too and Ray's
  token authentication is off. Joining an existing cluster sets neither.

Anything else (offline hub access, library verbosity, ...) is the user's choice: `resources.env` in the
recipe, or the shell. docs/cpu.md explains each CPU setting.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

CPU_DEFAULTS = {
    # In-process engine: starts in ~2 s instead of ~18 s on 2 cores, and a weight push hands tensors to the
    # model worker directly (they would not cross vLLM's RPC as tensors).
    "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
    # vLLM's default binding reserves a core for an engine process and pins threads; with learners and
    # engines sharing the cores that leaves the model one core.
    "VLLM_CPU_OMP_THREADS_BIND": "nobind",
    # Unset, Ray gives an actor as many threads as CPUs it reserved (1 for rollout workers, which reserve
    # none) and vLLM lowers torch's thread count; rlvr's actors take turns on all cores.
    "OMP_NUM_THREADS": str(os.cpu_count() or 2),
}

LOCAL_CLUSTER_DEFAULTS = {
    # The local cluster binds to loopback; vLLM's own address lookup would pick the external interface.
    "VLLM_HOST_IP": "127.0.0.1",
    # A private loopback cluster of one driver: without this Ray creates and enforces a token in ~/.ray.
    "RAY_AUTH_MODE": "disabled",
}


@dataclass
class RuntimeEnv:
    """What `apply_runtime_env` did: defaults it set, defaults the environment already set, recipe values."""

    chosen: dict[str, str] = field(default_factory=dict)
    kept: dict[str, str] = field(default_factory=dict)
    recipe: dict[str, str] = field(default_factory=dict)

    def line(self) -> str:
        """One console line with every value in effect and where it came from."""
        parts = [f"{k}={v}" for k, v in self.chosen.items()]
        parts += [f"{k}={v} (already set)" for k, v in self.kept.items()]
        parts += [f"{k}={v} (resources.env)" for k, v in self.recipe.items()]
        return "rlvr: runtime env: " + (" ".join(parts) if parts else "nothing set")


def cuda_device_count() -> int:
    """CUDA devices torch can use on this machine: 0 with a CPU build of torch or without a GPU. Imports torch,
    so call it only on the heavy path. The one place rlvr asks the platform for GPUs (tests replace it)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def torch_build() -> str:
    """torch's version and what it was built for, e.g. ``torch 2.13.0+cpu, a CPU build``, for messages."""
    import torch

    kind = f"built for CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU build"
    return f"torch {torch.__version__}, {kind}"


def resolve_device(requested: str, device_count: Callable[[], int] | None = None) -> str:
    """The device a run uses: ``auto`` is "cuda" when torch sees a GPU, else "cpu"; anything else as given.
    The one resolver (runs, `rlvr eval`, the start-up checks, which pass their own ``device_count``). Imports
    torch only for ``auto``."""
    if requested != "auto":
        return requested
    return "cuda" if (device_count or cuda_device_count)() > 0 else "cpu"


def in_process_engine() -> bool:
    """True when vLLM engines run their model inside the caller's process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``,
    the CPU default), where the object-store weight transport can hand them tensors."""
    return os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING", "1") == "0"


def runtime_defaults(device: str, *, local_cluster: bool = False) -> dict[str, str]:
    """The variables rlvr sets when unset, for ``device`` ("cpu" or "cuda") and the kind of Ray cluster."""
    env = dict(CPU_DEFAULTS) if device == "cpu" else {}
    if local_cluster:
        env |= LOCAL_CLUSTER_DEFAULTS
    return env


def apply_runtime_env(
    device: str = "auto", *, local_cluster: bool = False, extra: dict[str, str] | None = None
) -> RuntimeEnv:
    """Set the runtime defaults for ``device`` ("cpu", "cuda" or "auto"), then the recipe's ``extra``.

    Defaults are written only where a variable is unset; ``extra`` (`resources.env`) is written as given.
    Call before importing vLLM.
    """
    device = resolve_device(device)
    out = RuntimeEnv()
    for key, value in runtime_defaults(device, local_cluster=local_cluster).items():
        if key in os.environ:
            out.kept[key] = os.environ[key]
        else:
            os.environ[key] = out.chosen[key] = value
    for key, value in (extra or {}).items():
        os.environ[key] = out.recipe[key] = str(value)
    return out
