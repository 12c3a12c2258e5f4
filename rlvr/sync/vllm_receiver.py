"""The receiving end of the weight group, inside vLLM's worker processes.

vLLM mixes this class into its worker class (``worker_extension_cls``), so its methods run in the process that
holds the model, whichever executor the engine uses (in-process, a multiprocess engine core, one process per
tensor-parallel rank), reached through ``LLM.collective_rpc``. Every engine worker joins the group and receives
every tensor; vLLM's in-place reload (the checkpoint-format path: fused q/k/v and gate/up, each worker's
tensor-parallel shard, the backend's post-load repacking) consumes the tensors as the buckets arrive.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from rlvr.sync.group import WeightGroup


class WeightReceiverExtension:
    """Methods vLLM adds to each of its workers (``self`` is the vLLM worker)."""

    _rlvr_weight_group: WeightGroup | None = None

    def rlvr_join_weight_group(
        self,
        host: str,
        port: int,
        rank_offset: int,
        world_size: int,
        device: str,
        timeout_s: float,
        local_address: str | None = None,
    ) -> int:
        """Join the group as rank ``rank_offset`` + this worker's rank in its engine; returns that rank."""
        self.rlvr_leave_weight_group()
        rank = rank_offset + int(getattr(self, "rank", 0))
        group = WeightGroup(host, port, rank, world_size, device, timeout_s, local_address=local_address)
        group.connect()
        self._rlvr_weight_group = group
        return rank

    def rlvr_receive_weights(self) -> dict[str, Any]:
        """Receive one push and load it through vLLM's in-place reload; returns counts and time."""
        group = self._rlvr_weight_group
        if group is None:
            raise RuntimeError("rlvr_receive_weights before rlvr_join_weight_group")
        t0 = time.perf_counter()
        counts = {"num_tensors": 0, "num_bytes": 0}

        def counted() -> Iterator[tuple[str, Any]]:
            for name, tensor in group.receive():
                counts["num_tensors"] += 1
                counts["num_bytes"] += tensor.numel() * tensor.element_size()
                yield name, tensor

        stream = counted()
        self.reload_weights(weights_iterator=stream, is_checkpoint_format=True)
        for _ in stream:  # the loader may stop early; every bucket is a collective, so drain the rest
            pass
        return {**counts, "seconds": time.perf_counter() - t0, "rank": group.rank}

    def rlvr_leave_weight_group(self) -> None:
        """Close this worker's membership (a no-op when it has none)."""
        if self._rlvr_weight_group is not None:
            self._rlvr_weight_group.close()
            self._rlvr_weight_group = None
