"""The collective weight transport: learner rank 0 broadcasts into every rollout engine worker (gloo or NCCL).

The driver only orchestrates. ``connect`` has learner rank 0 host a weight group (``rlvr.sync.group``: its
node's address, a port the system picks) and every rollout engine worker join it; ``push`` asks every learner
rank to gather the weights (ZeRO-3) and rank 0 to broadcast them, bucket by bucket, while every rollout worker
receives them into vLLM through its in-place reload, inside the process that holds the model (multiprocess
engines and tensor parallelism included). gloo on CPU, NCCL on CUDA: one class, the backend follows the device.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any

from rlvr.orchestrate.group import RolloutGroup
from rlvr.orchestrate.weight_sync import SyncStats, WeightTransport, register_transport

DEFAULT_BUCKET_BYTES = 256 * 2**20


def _together(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls concurrently (the two sides of a collective); the first failure is raised at once."""
    pool = ThreadPoolExecutor(len(calls), thread_name_prefix="rlvr-weight-group")
    futures = [pool.submit(call) for call in calls]
    try:
        wait(futures, return_when=FIRST_EXCEPTION)
        for future in futures:
            if future.done() and future.exception() is not None:
                raise future.exception()
        return [future.result() for future in futures]
    finally:
        pool.shutdown(wait=False)  # a side stuck in the collective ends at its own deadline


@register_transport("collective")
class CollectiveTransport(WeightTransport):
    """Broadcast from learner rank 0 into every rollout engine worker over a private torch.distributed group.

    Args:
        device: "cpu" (gloo) or "cuda" (NCCL); the learners' and engines' device.
        bucket_bytes: Upper bound of one broadcast (a fused parameter larger than this travels alone).
    """

    def __init__(self, device: str = "cpu", bucket_bytes: int = DEFAULT_BUCKET_BYTES) -> None:
        self.device = device
        self.bucket_bytes = bucket_bytes
        self._members: tuple[Any, ...] | None = None

    @classmethod
    def for_device(cls, device: str, **kwargs: Any) -> CollectiveTransport:
        return cls(device=device, **kwargs)

    def outgoing(self) -> Callable[[list], list] | None:
        """A function learner rank 0 applies to the (name, tensor) list before sending; None sends it as is.

        Subclasses override it (tests corrupt a tensor through it); it must pickle (it runs in the learner).
        """
        return None

    def _membership(self, rollout_group: RolloutGroup, learners: Any) -> tuple[Any, ...]:
        return (id(learners), *map(id, rollout_group.workers))

    def connect(self, rollout_group: RolloutGroup, learners: Any, *, timeout: float | None = None) -> None:
        """Form the group: learner rank 0 plus ``tensor_parallel_size`` engine workers per rollout worker.

        Rebuilt from scratch when called again (a replaced rollout worker joins the new group).
        """
        timeout = timeout or rollout_group.config.sync.timeout_s
        world_size = 1 + rollout_group.num_engine_workers
        host, port = learners.open_weight_group(world_size, self.device, timeout)
        _together(
            lambda: learners.connect_weight_group(timeout),
            lambda: rollout_group.join_weight_group(host, port, world_size, timeout),
        )
        self._members = self._membership(rollout_group, learners)
        rollout_group.refit = lambda rank: self._refit(rollout_group, learners, timeout)

    def _refit(self, rollout_group: RolloutGroup, learners: Any, timeout: float) -> None:
        """A replaced worker is in no group: form a new one and push the learners' weights to every worker."""
        self.connect(rollout_group, learners, timeout=timeout)
        self.push(rollout_group, learners, timeout=timeout)

    def push(
        self, rollout_group: RolloutGroup, learners: Any, *, timeout: float | None = None, full: bool = True
    ) -> SyncStats:
        """Gather on every learner rank, broadcast from rank 0, load in every engine worker (always full)."""
        timeout = timeout or rollout_group.config.sync.timeout_s
        if self._members != self._membership(rollout_group, learners):
            self.connect(rollout_group, learners, timeout=timeout)
        dtype = rollout_group.dtype or "float32"
        t0 = time.perf_counter()
        sent, per_worker = _together(
            lambda: learners.send_weights(self.bucket_bytes, dtype, timeout, transform=self.outgoing()),
            rollout_group.receive_weights,
        )
        return SyncStats(
            transport=self.name,
            seconds=time.perf_counter() - t0,
            put_seconds=sent["seconds"],
            num_bytes=per_worker[0]["num_bytes"],
            num_tensors=per_worker[0]["num_tensors"],
            worker_seconds=[w["seconds"] for w in per_worker],
        )

    def close(self, rollout_group: RolloutGroup, learners: Any) -> None:
        """Every member leaves the group (actors that are shut down need not)."""
        if self._members is not None:
            rollout_group.leave_weight_group()
            learners.close_weight_group()
            self._members = None
