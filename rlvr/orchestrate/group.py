"""``RolloutGroup``: N rollout-worker actors behind one call, with deadlines, health checks and restarts.

Prompts are split evenly (contiguous spans) and results come back in prompt order. Every ``ray.get`` has a
deadline. A worker that dies is replaced, the replacement is refitted with every weight push since the last
full one, and the dead worker's share of the call is run again. A worker that hangs past the deadline is
killed and replaced the same way and its share retried once; a share that fails again on the replacement, or a
worker that fails more often than ``max_restarts``, raises ``RolloutWorkerError`` naming the worker.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError

from rlvr.config.rollout import RolloutConfig
from rlvr.orchestrate.rollout_worker import RolloutWorker
from rlvr.registry import loaded_plugins
from rlvr.rollout.engine import Completion

log = logging.getLogger(__name__)


class RolloutWorkerError(RuntimeError):
    """A rollout worker died, hung past its deadline, or raised; the message names the worker."""


class _WorkerFailed(Exception):
    """A worker died or hung during one call; ``_run`` replaces it and retries its share once."""

    def __init__(self, rank: int, message: str, cause: BaseException) -> None:
        super().__init__(message)
        self.rank = rank
        self.cause = cause


def first_line(exc: BaseException) -> str:
    """One line for a user message: an actor's own exception for a task error, else the first line of the
    text (Ray's errors run to many lines, with the actor's traceback; run.log keeps them whole)."""
    cause = getattr(exc, "cause", None)
    if isinstance(exc, RayTaskError) and isinstance(cause, BaseException):
        text = f"{type(cause).__name__}: {cause}"
    else:
        text = str(exc)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


# Calls whose deadline is ``rollout.sync.timeout_s`` (named in the timeout message).
_SYNC_CALLS = ("weight update", "sync probe", "refit", "weight group join", "weight group leave")


def split_evenly(num_items: int, num_parts: int) -> list[tuple[int, int]]:
    """Contiguous [start, end) spans whose sizes differ by at most one (the first spans get the extra)."""
    base, extra = divmod(num_items, num_parts)
    spans, start = [], 0
    for part in range(num_parts):
        end = start + base + (1 if part < extra else 0)
        spans.append((start, end))
        start = end
    return spans


class RolloutGroup:
    """A pool of ``RolloutWorker`` actors used as one rollout engine.

    Args:
        model_path: HF-format model directory visible to every node.
        config: The recipe's rollout section (``num_workers``, timeouts and engine settings).
        seed: Base engine seed; worker ``r`` gets ``seed + r``.
        device: "cpu" or "cuda".
        num_workers: Overrides ``config.num_workers``.
        num_cpus_per_worker: Ray CPUs reserved per actor. 0 on a small CPU box, where the actors share the
            cores with the learners (a 2-CPU cluster otherwise leaves learners pending).
        start_timeout_s: Deadline for engine start-up (vLLM import + model load).
        max_restarts: Replacements allowed per worker over the group's life.
        num_gpus_per_worker: Ray GPUs reserved per actor (``resources.gpus_per_rollout_worker``); None =
            ``tensor_parallel_size`` on CUDA, 0 on CPU.
        dtype: Engine dtype, the resolved ``model.dtype`` (None: the engine's device default).
        resources: Custom Ray resources per worker (``resources.rollout_node_resources``: pins workers to nodes).

    Weight pushes, refits and the sync probe use ``config.sync.timeout_s`` as their deadline; generation and
    scoring use ``config.call_timeout_s``.
    """

    def __init__(
        self,
        model_path: str,
        config: RolloutConfig,
        *,
        seed: int = 0,
        device: str = "cpu",
        num_workers: int | None = None,
        num_cpus_per_worker: float = 0.0,
        start_timeout_s: float = 600.0,
        max_restarts: int = 1,
        num_gpus_per_worker: float | None = None,
        dtype: str | None = None,
        resources: dict[str, float] | None = None,
    ) -> None:
        self.model_path = str(model_path)
        self._resources = dict(resources or {})
        self.dtype = dtype
        if num_gpus_per_worker is None:
            num_gpus_per_worker = config.tensor_parallel_size if device == "cuda" else 0.0
        self._num_gpus = num_gpus_per_worker
        self.config = config
        self.seed = seed
        self.device = device
        self.num_workers = num_workers or config.num_workers
        self.start_timeout_s = start_timeout_s
        self.max_restarts = max_restarts
        self.restarts = [0] * self.num_workers
        self._num_cpus = num_cpus_per_worker
        self._actor_cls = ray.remote(RolloutWorker)
        # Pushes since the last full one, replayed in order into a replacement worker.
        self._pushes: list[tuple[Any, dict[str, Any]]] = []
        # Set by a transport that cannot replay pushes (the collective one): brings a replacement worker to
        # the learner's current weights instead.
        self.refit: Callable[[int], None] | None = None
        # Held while a worker is replaced and while a push is recorded: with async prefetch, generation (a
        # background thread) and weight pushes (the loop) fail over the same worker at the same time.
        self._replacing = threading.RLock()
        t0 = time.perf_counter()
        self.workers = [self._spawn(rank) for rank in range(self.num_workers)]
        self.ready_info = [self._wait_ready(rank) for rank in range(self.num_workers)]
        self.start_seconds = time.perf_counter() - t0

    def _spawn(self, rank: int) -> Any:
        options = {"num_cpus": self._num_cpus, "num_gpus": self._num_gpus, "resources": self._resources}
        return self._actor_cls.options(**options).remote(
            rank, self.model_path, self.config, self.seed + rank, self.device, self.dtype, loaded_plugins()
        )

    def _wait_ready(self, rank: int) -> dict[str, Any]:
        return self._get_or_raise(self.workers[rank].ready.remote(), rank, "start-up", self.start_timeout_s)

    def _get(self, ref: Any, rank: int, what: str, timeout: float) -> Any:
        """``ray.get`` with a deadline; a dead or hung worker raises ``_WorkerFailed`` (retryable)."""
        try:
            return ray.get(ref, timeout=timeout)
        except GetTimeoutError as exc:
            key = "rollout.sync.timeout_s" if what in _SYNC_CALLS else "rollout.call_timeout_s"
            message = (
                f"rollout worker {rank} did not finish {what} within {timeout:.0f} s "
                f"({key}; hung or overloaded)"
            )
            raise _WorkerFailed(rank, message, exc) from exc
        except RayActorError as exc:
            raise _WorkerFailed(
                rank, f"rollout worker {rank} died during {what} ({first_line(exc)})", exc
            ) from exc
        except RayTaskError as exc:
            raise RolloutWorkerError(
                f"rollout worker {rank} raised during {what}: {first_line(exc)}"
            ) from exc

    def _get_or_raise(self, ref: Any, rank: int, what: str, timeout: float) -> Any:
        """``_get`` where a dead or hung worker ends the call with ``RolloutWorkerError`` (no retry)."""
        try:
            return self._get(ref, rank, what, timeout)
        except _WorkerFailed as failed:
            raise RolloutWorkerError(str(failed)) from failed

    def _restart(self, rank: int, failed: _WorkerFailed) -> None:
        if self.restarts[rank] >= self.max_restarts:
            raise RolloutWorkerError(
                f"{failed}; its restart budget ({self.max_restarts}) is spent, giving up"
            ) from failed
        self.restarts[rank] += 1
        log.warning("%s; restarting it and retrying (%d/%d)", failed, self.restarts[rank], self.max_restarts)
        ray.kill(self.workers[rank], no_restart=True)  # a hung worker too: a new call would queue behind it
        self.workers[rank] = self._spawn(rank)
        self._wait_ready(rank)
        if self.refit is not None:
            self.refit(rank)
            return
        for ref, kwargs in list(self._pushes):
            ref_call = self.workers[rank].update_weights.remote(ref, **kwargs)
            self._get_or_raise(ref_call, rank, "refit", self.config.sync.timeout_s)

    @property
    def _timeout(self) -> float:
        return self.config.call_timeout_s

    def _run(
        self,
        what: str,
        calls: dict[int, tuple[str, tuple, dict]],
        timeout: float | None = None,
        submitted: threading.Event | None = None,
    ) -> dict[int, Any]:
        """Submit one call per listed worker (then set `submitted`), then collect in rank order.

        A worker that dies or hangs past the deadline is replaced (and refitted) and its share is run once
        more on the replacement; the shares of the other workers are kept, so no prompt is lost or counted
        twice. A second failure of the same share raises ``RolloutWorkerError`` naming the worker.
        """
        deadline = timeout or self._timeout
        handles = {rank: self.workers[rank] for rank in calls}
        refs = {rank: getattr(handles[rank], m).remote(*a, **kw) for rank, (m, a, kw) in calls.items()}
        if submitted is not None:
            submitted.set()  # every worker has the call queued: later calls (a weight push) run after it
        results = {}
        for rank, ref in refs.items():
            try:
                results[rank] = self._get(ref, rank, what, deadline)
            except _WorkerFailed as failed:
                with self._replacing:
                    if self.workers[rank] is handles[rank]:
                        self._restart(rank, failed)
                    else:  # another thread's call replaced it (and refitted it): not a second failure
                        log.info("rollout worker %d was replaced during %s; resending the call", rank, what)
                method, args, kwargs = calls[rank]
                ref = getattr(self.workers[rank], method).remote(*args, **kwargs)
                try:
                    results[rank] = self._get(ref, rank, what, deadline)
                except _WorkerFailed as again:
                    raise RolloutWorkerError(f"{again}, again on a restarted worker; giving up") from again
        return results

    def generate(
        self,
        prompt_token_ids: list[list[int]],
        *,
        n: int,
        temperature: float,
        max_tokens: int,
        top_p: float = 1.0,
        top_k: int = 0,
        seed: int | None = None,
        submitted: threading.Event | None = None,
    ) -> list[list[Completion]]:
        """``RolloutEngine.generate`` over the group; output order = prompt order.

        With a seed, prompt ``i`` gets seed ``seed + i * n`` wherever it runs, so results do not depend on
        the number of workers. ``submitted`` is set once every worker has the call queued (actors run calls
        in order, so a weight push sent after that runs after this generation).
        """
        calls = {}
        for rank, (start, end) in enumerate(split_evenly(len(prompt_token_ids), self.num_workers)):
            if end > start:
                kwargs = {
                    "n": n,
                    "temperature": temperature,
                    "top_p": top_p,
                    "top_k": top_k,
                    "max_tokens": max_tokens,
                    "seed": None if seed is None else seed + start * n,
                }
                calls[rank] = ("generate", (prompt_token_ids[start:end],), kwargs)
        results = self._run("generate", calls, submitted=submitted)
        return [group for rank in sorted(results) for group in results[rank]]

    def score(self, prompt_ids: list[list[int]], response_ids: list[list[int]]) -> list[list[float]]:
        """``RolloutEngine.score`` split over the group; output order = input order."""
        calls = {
            rank: ("score", (prompt_ids[start:end], response_ids[start:end]), {})
            for rank, (start, end) in enumerate(split_evenly(len(prompt_ids), self.num_workers))
            if end > start
        }
        results = self._run("score", calls)
        return [row for rank in sorted(results) for row in results[rank]]

    def score_on_every_worker(
        self, prompt_ids: list[list[int]], response_ids: list[list[int]]
    ) -> list[list[list[float]]]:
        """Every worker scores all sequences (the sync probe); ``out[rank]`` is that worker's scores."""
        calls = {rank: ("score", (prompt_ids, response_ids), {}) for rank in range(self.num_workers)}
        results = self._run("sync probe", calls, timeout=self.config.sync.timeout_s)
        return [results[rank] for rank in range(self.num_workers)]

    def update_weights(
        self,
        weights: Any,
        *,
        full: bool = True,
        max_chunk_bytes: int | None = None,
    ) -> list[dict[str, Any]]:
        """Push weights to every worker.

        Args:
            weights: An ObjectRef to a list of (hf_name, tensor), or such a list (put into the object store
                once here, then read zero-copy by every worker on this node).
            full: True when ``weights`` is the whole model; partial pushes are kept for refitting restarts.
            max_chunk_bytes: Reload chunk bound (see ``RolloutEngine.update_weights``).

        Returns:
            Per-worker update stats, in rank order.
        """
        ref = weights if isinstance(weights, ray.ObjectRef) else ray.put(list(weights))
        kwargs = {"max_chunk_bytes": max_chunk_bytes}
        with self._replacing:
            if full:
                self._pushes.clear()
            self._pushes.append((ref, kwargs))
        calls = {rank: ("update_weights", (ref,), kwargs) for rank in range(self.num_workers)}
        results = self._run("weight update", calls, timeout=self.config.sync.timeout_s)
        return [results[rank] for rank in range(self.num_workers)]

    @property
    def num_engine_workers(self) -> int:
        """Model-holding processes over the whole group (``tensor_parallel_size`` per rollout worker)."""
        return self.num_workers * self.config.tensor_parallel_size

    def _run_collective(self, what: str, method: str, args: dict[int, tuple], timeout: float) -> list[Any]:
        """One call per worker, all submitted before any is awaited; no retry (a replacement worker is not a
        member of the weight group the others are in the middle of a collective with)."""
        refs = {rank: getattr(self.workers[rank], method).remote(*a) for rank, a in args.items()}
        return [self._get_or_raise(refs[rank], rank, what, timeout) for rank in sorted(refs)]

    def join_weight_group(self, host: str, port: int, world_size: int, timeout: float) -> list[list[int]]:
        """Every engine worker joins the collective weight group hosted at ``host:port`` (group rank 0 is the
        sender); worker ``r``'s engine workers take ranks ``1 + r * tensor_parallel_size + i``."""
        tp = self.config.tensor_parallel_size
        args = {r: (host, port, 1 + r * tp, world_size, timeout) for r in range(self.num_workers)}
        return self._run_collective("weight group join", "join_weight_group", args, timeout)

    def receive_weights(self) -> list[dict[str, Any]]:
        """Every worker receives one collective push (the sender broadcasts concurrently); stats in rank order."""
        args = {r: () for r in range(self.num_workers)}
        return self._run_collective("weight update", "receive_weights", args, self.config.sync.timeout_s)

    def leave_weight_group(self) -> None:
        """Every worker leaves the collective weight group."""
        args = {r: () for r in range(self.num_workers)}
        self._run_collective("weight group leave", "leave_weight_group", args, self.config.sync.timeout_s)

    def health(self) -> list[dict[str, Any]]:
        """Status of every worker; a dead worker is replaced (within budget) before this returns."""
        results = self._run("health check", {r: ("health", (), {}) for r in range(self.num_workers)})
        return [results[rank] for rank in range(self.num_workers)]

    def sleep(self) -> None:
        """Release accelerator memory on every worker (no-op on CPU)."""
        self._run("sleep", {r: ("sleep", (), {}) for r in range(self.num_workers)})

    def wake_up(self) -> None:
        """Undo ``sleep`` on every worker."""
        self._run("wake_up", {r: ("wake_up", (), {}) for r in range(self.num_workers)})

    def kill_worker(self, rank: int, timeout_s: float = 60.0) -> None:
        """Fault injection for tests: kill one worker's actor as a crash would, and return once it is dead.

        ``ray.kill`` only requests the kill; a call made right after it can still be answered by the old
        process, so this waits until a call on the actor fails.
        """
        worker = self.workers[rank]
        ray.kill(worker, no_restart=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                ray.get(worker.health.remote(), timeout=5)
            except RayActorError:
                return
            except GetTimeoutError:
                continue
            time.sleep(0.1)
        raise RuntimeError(f"rollout worker {rank} was still answering {timeout_s:.0f} s after ray.kill")

    def shutdown(self) -> None:
        """Kill every worker actor."""
        for worker in self.workers:
            ray.kill(worker, no_restart=True)
        self.workers = []
