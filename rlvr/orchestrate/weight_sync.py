"""Learner -> rollout weight sync: transports, the post-sync logprob probe, and their errors.

A sync is: the learner materialises full HF-named tensors, a ``WeightTransport`` moves them into every
rollout engine, then ``verify_sync`` has every worker score the same probe tokens and compares with the
learner's own logprobs. A mismatch above tolerance raises ``WeightSyncError`` naming the worker, so a stale or
corrupted engine can never sample silently (the failure mode of TRL#5312, SkyRL#1680, slime#1673).

Transports are registered by name (``rollout.sync.transport``): ``object_store`` (Ray's object store, in-process
CPU engines) and ``collective`` (``rlvr.orchestrate.collective``: a gloo/NCCL broadcast from learner rank 0).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import ray

from rlvr.config.rollout import SyncConfig
from rlvr.devices import in_process_engine
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
    """Moves learner weights into every worker of a ``RolloutGroup``.

    The driver calls ``connect`` once after the actors start (optional: a transport connects on its first push
    when needed), then ``push`` after every update; ``verify_sync`` checks the result.
    """

    name: ClassVar[str] = ""

    @classmethod
    def for_device(cls, device: str, **kwargs: Any) -> WeightTransport:
        """Build this transport for ``device`` ("cpu" or "cuda")."""
        return cls(**kwargs)

    def connect(  # noqa: B027 (optional hook: the object store has nothing to set up)
        self, rollout_group: RolloutGroup, learners: Any, *, timeout: float | None = None
    ) -> None:
        """Set up whatever links the learners to the rollout workers (nothing, by default)."""

    @abstractmethod
    def push(
        self, rollout_group: RolloutGroup, learners: Any, *, timeout: float | None = None, full: bool = True
    ) -> SyncStats:
        """Deliver the learners' current weights (HF names, full tensors) to every worker; return the cost.

        ``learners`` is the ``LearnerGroup``; ``timeout`` bounds each phase (default ``rollout.sync.timeout_s``).
        """


def publish_weights(named_tensors: Iterable[tuple[str, Any]]) -> ray.ObjectRef:
    """Learner side of the object-store transport: one ``ray.put`` of detached CPU (name, tensor) pairs.

    Call it in the learner process (rank 0 after a ZeRO-3 gather, which every rank must join) and hand the
    returned ref to the driver; workers on the same node then map the tensors zero-copy.
    """
    return ray.put([(name, t.detach().to("cpu").contiguous()) for name, t in named_tensors])


@register_transport("object_store")
class ObjectStoreTransport(WeightTransport):
    """CPU (and single-node) transport through Ray's shared-memory object store.

    Learner rank 0 puts the tensors once; every worker maps them and loads them through vLLM's in-place
    reload in its own process, so it needs in-process engines (``VLLM_ENABLE_V1_MULTIPROCESSING=0``, the CPU
    default).

    Args:
        max_chunk_bytes: Bound on one reload call inside the engine (None: whole model at once).
    """

    def __init__(self, max_chunk_bytes: int | None = None) -> None:
        self.max_chunk_bytes = max_chunk_bytes

    def push(
        self, rollout_group: RolloutGroup, learners: Any, *, timeout: float | None = None, full: bool = True
    ) -> SyncStats:
        """Push the learners' weights: ``learners.publish_weights`` then every worker loads them.

        ``learners`` may also be weights already published (an ObjectRef from ``publish_weights``) or a list
        of (name, tensor), put into the object store here.
        """
        t0 = time.perf_counter()
        if hasattr(learners, "publish_weights"):
            ref = learners.publish_weights(timeout=timeout or rollout_group.config.sync.timeout_s)
        elif isinstance(learners, ray.ObjectRef):
            ref = learners
        else:
            ref = publish_weights(learners)
        put_seconds = time.perf_counter() - t0 if ref is not learners else 0.0
        per_worker = self.deliver(rollout_group, ref, full=full)
        return SyncStats(
            transport=self.name,
            seconds=time.perf_counter() - t0,
            put_seconds=put_seconds,
            num_bytes=per_worker[0]["num_bytes"],
            num_tensors=per_worker[0]["num_tensors"],
            worker_seconds=[w["seconds"] for w in per_worker],
        )

    def deliver(self, rollout_group: RolloutGroup, ref: ray.ObjectRef, *, full: bool = True) -> list[dict]:
        """Every worker loads the published tensors; per-worker update stats in rank order."""
        return rollout_group.update_weights(ref, full=full, max_chunk_bytes=self.max_chunk_bytes)


def make_transport(device: str, name: str = "auto", **kwargs: Any) -> WeightTransport:
    """The transport named by ``rollout.sync.transport`` for ``device``.

    ``auto`` picks the object store for in-process CPU engines (the CPU default) and the collective transport
    otherwise (CUDA, or multiprocess engines, which the object store cannot reach).
    """
    if device not in ("cpu", "cuda"):
        raise ValueError(f"no weight transport for device {device!r}; registered: {TRANSPORTS.names()}")
    if name == "auto":
        name = "object_store" if device == "cpu" and in_process_engine() else "collective"
    return TRANSPORTS.get(name).for_device(device, **kwargs)


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
    dtype: str | None = None,
) -> SyncStats:
    """Push with ``transport`` from ``weights`` (the ``LearnerGroup``, or for the object store weights already
    published), then (if ``sync.verify``) run ``verify_sync`` on the probe.

    The probe is the learner's logprobs of a few fixed sequences (``sync.probe_sequences`` of them, e.g. the
    first responses of the step), computed with the weights being pushed. ``dtype`` (the run's resolved
    ``model.dtype``; default the group's) sets the probe tolerance. The training loop's sync phase is this.

    Raises:
        WeightSyncError: The probe disagrees beyond ``sync.tolerance_for(dtype)`` on some worker.
        ValueError: Verification is on but no probe was given.
    """
    probe_given = None not in (probe_prompt_ids, probe_response_ids, learner_logprobs)
    if sync.verify and not probe_given:
        raise ValueError("sync.verify is on: pass probe_prompt_ids, probe_response_ids, learner_logprobs")
    stats = transport.push(rollout_group, weights, timeout=sync.timeout_s, full=full)
    if sync.verify:
        t0 = time.perf_counter()
        maxima = verify_sync(
            rollout_group,
            probe_prompt_ids,
            probe_response_ids,
            learner_logprobs,
            sync.tolerance_for(dtype or rollout_group.dtype or "float32"),
        )
        stats.verify_seconds = time.perf_counter() - t0
        stats.verify_max_delta = max(maxima)
    return stats
