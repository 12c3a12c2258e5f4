"""Process-group setup for one learner rank, always with a deadline on every collective."""

from __future__ import annotations

import os
import socket
from datetime import timedelta


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def init_distributed(timeout_s: float) -> tuple[int, int]:
    """Join (or create) the default process group through DeepSpeed; idempotent.

    A plain ``python`` process with no launcher variables becomes a 1-rank group on loopback with a
    free port; under torchrun/deepspeed/Ray the launcher's RANK/WORLD_SIZE/MASTER_* are used as is.
    The backend is the accelerator's (gloo on CPU, nccl on CUDA).

    Args:
        timeout_s: Deadline for every collective of the group; a peer that hangs fails the call
            instead of blocking the run forever.

    Returns:
        ``(rank, world_size)``.
    """
    import deepspeed
    import torch.distributed as dist
    from deepspeed.accelerator import get_accelerator

    # A plain process (or one where an in-process vLLM engine already made a 1-rank group and left only part
    # of the launcher variables behind) gets a 1-rank group's values; a launcher's values are kept.
    if "RANK" not in os.environ:
        os.environ.update({"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "LOCAL_WORLD_SIZE": "1"})
    for key, value in (("LOCAL_RANK", "0"), ("WORLD_SIZE", "1"), ("LOCAL_WORLD_SIZE", "1")):
        os.environ.setdefault(key, value)
    if not dist.is_initialized():
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", str(free_port()))
        deepspeed.init_distributed(
            dist_backend=get_accelerator().communication_backend_name(),
            timeout=timedelta(seconds=timeout_s),
            verbose=False,
        )
    return dist.get_rank(), dist.get_world_size()
