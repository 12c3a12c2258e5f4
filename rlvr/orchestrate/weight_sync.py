"""Learner -> rollout weight sync: transports, the post-sync logprob probe, and their errors.

A sync is: the learner materialises full HF-named tensors, a ``WeightTransport`` moves them into every
rollout engine, then ``verify_sync`` has every worker score the same probe tokens and compares with the
learner's own logprobs. A mismatch above tolerance raises ``WeightSyncError`` naming the worker, so a stale or
corrupted engine can never sample silently (the failure mode of TRL#5312, SkyRL#1680, slime#1673).

Transports are registered by name; ``make_transport(device)`` picks the object store on CPU and NCCL on GPU.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import ray

from rlvr.config.rollout import SyncConfig
from rlvr.orchestrate.group import RolloutGroup
from rlvr.registry import Registry


class WeightSyncError(RuntimeError):
    """Rollout weights do not match the learner's after a sync."""


@dataclass
class SyncStats:
    """Cost of one push.

    Attributes:
        transport: Registry name of the transport.
        seconds: Wall time of the whole push, until every worker finished loading.
        put_seconds: Learner-side time to publish the tensors (0 when the learner published them).
        num_bytes: Tensor bytes delivered to each worker.
        num_tensors: Tensors per worker.
        worker_seconds: Per-worker time spent inside ``update_weights``.
        verify_max_delta: Largest |Δlogprob| of the post-sync probe over all workers (None: not verified).
        verify_seconds: Time of the probe.
    """

    transport: str
    seconds: float
    put_seconds: float
    num_bytes: int
    num_tensors: int
    worker_seconds: list[float] = field(default_factory=list)
    verify_max_delta: float | None = None
    verify_seconds: float = 0.0


TRANSPORTS = Registry("weight transport")


def register_transport(name: str) -> Callable[[type[WeightTransport]], type[WeightTransport]]:
    """Class decorator adding a transport to the registry under ``name``."""

    def wrap(cls: type[WeightTransport]) -> type[WeightTransport]:
        cls.name = name
        return TRANSPORTS.register(name)(cls)

    return wrap


class WeightTransport(ABC):
    """Moves learner weights into every worker of a ``RolloutGroup``."""

    name: ClassVar[str] = ""

    @abstractmethod
    def push(self, group: RolloutGroup, weights: Any, *, full: bool = True) -> SyncStats:
        """Deliver ``weights`` (HF names, full tensors) to every worker and return what it cost."""


def publish_weights(named_tensors: Iterable[tuple[str, Any]]) -> ray.ObjectRef:
    """Learner side of the object-store transport: one ``ray.put`` of detached CPU (name, tensor) pairs.

    Call it in the learner process (rank 0 after a ZeRO-3 gather, which every rank must join) and hand the
    returned ref to the driver; workers on the same node then map the tensors zero-copy.
    """
    return ray.put([(name, t.detach().to("cpu").contiguous()) for name, t in named_tensors])


@register_transport("object_store")
class ObjectStoreTransport(WeightTransport):
    """CPU (and single-node) transport through Ray's shared-memory object store.

    Args:
        max_chunk_bytes: Bound on one reload call inside the engine (None: whole model at once).
    """

    def __init__(self, max_chunk_bytes: int | None = None) -> None:
        self.max_chunk_bytes = max_chunk_bytes

    def push(self, group: RolloutGroup, weights: Any, *, full: bool = True) -> SyncStats:
        """Push an ObjectRef from ``publish_weights`` (or a list of (name, tensor), published here)."""
        t0 = time.perf_counter()
        ref = weights if isinstance(weights, ray.ObjectRef) else publish_weights(weights)
        put_seconds = time.perf_counter() - t0 if ref is not weights else 0.0
        per_worker = group.update_weights(ref, full=full, max_chunk_bytes=self.max_chunk_bytes)
        return SyncStats(
            transport=self.name,
            seconds=time.perf_counter() - t0,
            put_seconds=put_seconds,
            num_bytes=per_worker[0]["num_bytes"],
            num_tensors=per_worker[0]["num_tensors"],
            worker_seconds=[w["seconds"] for w in per_worker],
        )


class _GroupSyncClient:
    """vLLM's ``VLLMWeightSyncClient`` protocol, fanned out to every worker of a group."""

    def __init__(self, group: RolloutGroup) -> None:
        self.group = group

    def init_weight_transfer_engine(self, init_info: dict[str, Any]) -> None:
        self.group.collective_rpc("init_weight_transfer_engine", {"init_info": init_info})

    def start_weight_update(self) -> None:
        self.group.collective_rpc("start_weight_update")

    def update_weights(self, update_info: Any) -> None:
        self.group.collective_rpc("update_weights", {"update_info": update_info})

    def finish_weight_update(self, weight_version: str | None = None) -> None:
        self.group.collective_rpc("finish_weight_update")


@register_transport("nccl")
class NcclTransport(WeightTransport):
    """GPU transport: NCCL broadcast from learner rank 0 into every engine via vLLM's weight-transfer API.

    NOT TESTED: written against vLLM 0.32's ``NCCLTrainerWeightTransferEngine`` but never run, because this
    project's CI machine has no GPU (NCCL needs CUDA). The engines must be built on CUDA (``RolloutEngine``
    then enables vLLM's ``weight_transfer_config``). Unlike the object store, ``connect`` and ``push`` run in
    the learner's rank-0 process (the NCCL sender), which holds the ``RolloutGroup`` handle; every other
    learner rank must still iterate the same weights (ZeRO-3/FSDP gathers are collectives).

    Args:
        master_address: Address of the learner rank-0 node, reachable by every rollout GPU.
        master_port: Free port for the rendezvous.
    """

    def __init__(self, master_address: str, master_port: int) -> None:
        self.master_address = master_address
        self.master_port = master_port
        self._engine: Any = None

    def connect(self, group: RolloutGroup, module: Any) -> None:
        """Open the NCCL group: learner rank 0 plus every engine worker (``tensor_parallel_size`` each)."""
        from vllm.distributed.weight_transfer.base import ModuleSource
        from vllm.distributed.weight_transfer.nccl_engine import (
            NCCLTrainerInitInfo,
            NCCLTrainerWeightTransferEngine,
        )

        world_size = 1 + group.num_workers * group.config.tensor_parallel_size
        info = NCCLTrainerInitInfo(self.master_address, self.master_port, world_size, rank=0)
        self._engine = NCCLTrainerWeightTransferEngine.trainer_init(
            info, client=_GroupSyncClient(group), source=ModuleSource(module)
        )

    def push(self, group: RolloutGroup, weights: Any = None, *, full: bool = True) -> SyncStats:
        """Broadcast the connected module's current weights; ``weights`` is unused (the source is the module)."""
        if self._engine is None:
            raise RuntimeError("NcclTransport.push before connect(group, module)")
        t0 = time.perf_counter()
        self._engine.send_weights()
        meta = self._engine.source.metadata()
        num_bytes = sum(m.dtype.itemsize * _numel(m.shape) for m in meta)
        return SyncStats(self.name, time.perf_counter() - t0, 0.0, num_bytes, len(meta))


def _numel(shape: tuple[int, ...]) -> int:
    count = 1
    for dim in shape:
        count *= dim
    return count


def make_transport(device: str, **kwargs: Any) -> WeightTransport:
    """The default transport for ``device``: object store on CPU, NCCL on CUDA."""
    name = {"cpu": "object_store", "cuda": "nccl"}.get(device)
    if name is None:
        raise ValueError(f"no weight transport for device {device!r}; registered: {TRANSPORTS.names()}")
    return TRANSPORTS.get(name)(**kwargs)


def get_transport(name: str, **kwargs: Any) -> WeightTransport:
    """Build a registered transport by name."""
    return TRANSPORTS.get(name)(**kwargs)


def verify_sync(
    rollout_group: RolloutGroup,
    probe_prompt_ids: list[list[int]],
    probe_response_ids: list[list[int]],
    learner_logprobs: list[list[float]],
    tol: float,
) -> list[float]:
    """Check that every worker now computes the learner's logprobs on fixed probe tokens.

    Args:
        rollout_group: Workers that just received weights.
        probe_prompt_ids: Probe prompts (a few sequences suffice; every token is compared).
        probe_response_ids: Probe responses scored under those prompts.
        learner_logprobs: The learner's logprobs of ``probe_response_ids`` after its update.
        tol: Largest allowed |Δlogprob| (fp32 CPU agrees to ~1e-6; bf16 needs ~5e-2).

    Returns:
        Max |Δlogprob| per worker, in rank order.

    Raises:
        WeightSyncError: Some worker differs by more than ``tol`` (or returned NaN); names the worker.
    """
    per_worker = rollout_group.score_on_every_worker(probe_prompt_ids, probe_response_ids)
    maxima = []
    for rank, scores in enumerate(per_worker):
        worst, where = 0.0, (0, 0)
        for seq, (got, want) in enumerate(zip(scores, learner_logprobs)):
            if len(got) != len(want):
                raise WeightSyncError(
                    f"sync probe: worker {rank} scored {len(got)} tokens of sequence {seq}, learner {len(want)}"
                )
            for pos, (a, b) in enumerate(zip(got, want)):
                delta = abs(a - b)
                if not delta <= worst:  # also true for NaN, which must fail
                    worst, where = delta, (seq, pos)
        maxima.append(worst)
        if not worst <= tol:
            raise WeightSyncError(
                f"weight sync verification failed on rollout worker {rank}: max |Δlogprob| = {worst:.3g} > "
                f"tol {tol:.3g} (probe sequence {where[0]}, token {where[1]}); the engine's weights do not "
                "match the learner's"
            )
    return maxima


def sync_weights(
    rollout_group: RolloutGroup,
    transport: WeightTransport,
    weights: Any,
    sync: SyncConfig,
    *,
    probe_prompt_ids: list[list[int]] | None = None,
    probe_response_ids: list[list[int]] | None = None,
    learner_logprobs: list[list[float]] | None = None,
    full: bool = True,
) -> SyncStats:
    """Push ``weights`` with ``transport``, then (if ``sync.verify``) run ``verify_sync`` on the probe.

    The probe is the learner's logprobs of a few fixed sequences (``sync.probe_sequences`` of them, e.g. the
    first responses of the step), computed with the weights being pushed.

    Raises:
        WeightSyncError: The probe disagrees beyond ``sync.tolerance_for(dtype)`` on some worker.
        ValueError: Verification is on but no probe was given.
    """
    probe_given = None not in (probe_prompt_ids, probe_response_ids, learner_logprobs)
    if sync.verify and not probe_given:
        raise ValueError("sync.verify is on: pass probe_prompt_ids, probe_response_ids, learner_logprobs")
    stats = transport.push(rollout_group, weights, full=full)
    if sync.verify:
        t0 = time.perf_counter()
        maxima = verify_sync(
            rollout_group,
            probe_prompt_ids,
            probe_response_ids,
            learner_logprobs,
            sync.tolerance_for(rollout_group.dtype or "float32"),
        )
        stats.verify_seconds = time.perf_counter() - t0
        stats.verify_max_delta = max(maxima)
    return stats
