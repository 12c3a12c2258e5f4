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
        _forget_deepspeed_groups()  # no world: any group DeepSpeed cached belongs to a destroyed one
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", str(free_port()))
        deepspeed.init_distributed(
            dist_backend=get_accelerator().communication_backend_name(),
            timeout=timedelta(seconds=timeout_s),
            verbose=False,
        )
    if _deepspeed_groups_are_stale():
        _forget_deepspeed_groups()
    return dist.get_rank(), dist.get_world_size()


def _cached_deepspeed_groups() -> list:
    from deepspeed.utils import groups

    names = (
        "_WORLD_GROUP",
        "_DATA_PARALLEL_GROUP",
        "_MODEL_PARALLEL_GROUP",
        "_ZERO_PARAM_INTRA_PARALLEL_GROUP",
    )
    return [getattr(groups, name, None) for name in names]


def _deepspeed_groups_are_stale() -> bool:
    """True when DeepSpeed holds a process group torch no longer knows (its world was destroyed and remade)."""
    import torch.distributed as dist

    registered = dist.distributed_c10d._world.pg_group_ranks
    return any(
        g is not None and g is not dist.GroupMember.WORLD and g not in registered
        for g in _cached_deepspeed_groups()
    )


def _forget_deepspeed_groups() -> None:
    """Drop DeepSpeed's module-level group caches.

    DeepSpeed caches the groups it derives from the world (``deepspeed.utils.groups``) and only clears them when
    the world is torn down through ``deepspeed.comm``. An in-process vLLM engine (the tiny build's evaluation, the
    rollout tests) destroys the world through torch directly, so the next Learner in that process failed with
    "Group ... is not registered" (reproduced: Learner, ``dist.destroy_process_group()``, Learner).
    """
    from deepspeed.utils import groups

    release = getattr(groups, "_release_process_group_references", None)
    if release is not None:
        release(None)
    else:  # older DeepSpeed: the world clone is the cache the engine reads
        groups._WORLD_GROUP = None
        groups.mesh_device = None
