"""A pool of pre-started worker processes that runs reward functions on model output, with hard limits.

Why processes: Math-Verify's timeouts use `signal.alarm` (main thread only), a hung sympy call cannot be
stopped from a thread, and sympy's parsers can execute injected code. Each worker is a fresh interpreter
('spawn' context, safe next to torch / Ray threads) that

* imports the reward functions itself from their spec strings (file rewards by path);
* runs under RLIMIT_AS (`memory_mb` above its footprint after imports) and, by default, an audit hook
  that refuses process creation, sockets, file writes and signals to other processes;
* gets one item at a time; past `timeout_s` of wall clock it is SIGKILLed and replaced.

Protection layers, innermost first (each has its own test in tests/rewards/test_sandbox_layers.py):
the reward's own filter of pathological answers and Math-Verify's own timeout (both inside the
reward; counted from `RewardResult.guard`), the memory limit (a `MemoryError` result), the wall-clock
kill, and the replacement of any worker that died or was killed.

Timeouts, crashes and exceptions become `RewardResult(correct=False, error=..., timed_out=...)`; a batch
in which more than `max_error_fraction` of the items fail raises `RewardError` instead of training on
silent zeros. The pool is plain multiprocessing, usable from any driver::

    with VerifierPool(workers=2, timeout_s=5, memory_mb=1024) as pool:
        results = pool.score([("... \\boxed{42}", "42")])

Like any 'spawn' user, a driver *script* must guard its entry point with `if __name__ == "__main__":`.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import pickle
import signal
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import wait as wait_connections
from typing import Any

from rlvr.reward.registry import worker_spec
from rlvr.reward.types import RewardError, RewardResult

# Consecutive workers that die before becoming ready before the pool gives up.
MAX_START_FAILURES = 3


def death_message(exitcode: int | None, memory_mb: int) -> str:
    """Why a worker died while scoring an item, from its exit status (the pool did not kill it).

    A worker that exits with a code did so by itself (a reward or a library called `exit`); a signal
    names who likely sent it. Hitting the memory limit normally shows up as a `MemoryError` result, not
    a death: only a native crash (SIGSEGV / SIGABRT / SIGBUS) can be an allocation failure under it.
    """
    if exitcode is None:
        return "reward worker stopped answering and its exit status is unknown"
    if exitcode >= 0:
        return (
            f"reward worker exited by itself with exit code {exitcode} while scoring this item "
            "(the reward function or a library it calls exited the process)"
        )
    try:
        name = signal.Signals(-exitcode).name
    except ValueError:
        name = f"signal {-exitcode}"
    if -exitcode == signal.SIGKILL:
        return (
            f"reward worker was killed by {name} from outside the pool (the system's out-of-memory "
            "killer, or another process) while scoring this item"
        )
    if -exitcode in (signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS):
        return (
            f"reward worker crashed with {name} while scoring this item (a native library failure; an "
            f"allocation refused under the {memory_mb} MB memory limit can end this way)"
        )
    return f"reward worker was terminated by {name} while scoring this item"


@dataclass
class VerifyItem:
    """One reward call: `fn(completion, answer=answer, **kwargs)` in a worker.

    Attributes:
        completion: the model's response.
        answer: the gold answer (any picklable value, e.g. a list of acceptable answers).
        fn: the reward spec (registered name, `pkg.mod:fn`, `file.py:fn`).
        kwargs: extra keyword arguments (row fields and the term's kwargs).
    """

    completion: str
    answer: Any
    fn: str = "math"
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Worker:
    proc: Any
    conn: Any
    started_at: float
    ready: bool = False
    task: int | None = None
    deadline: float = 0.0


class VerifierPool:
    """Pre-started sandboxed worker processes with a per-item wall-clock timeout and memory limit.

    Args:
        workers: number of worker processes.
        timeout_s: hard wall-clock limit per item, from dispatch to result.
        memory_mb: address-space budget of a worker above its footprint after imports.
        max_error_fraction: `score` raises RewardError when more than this fraction of a batch fails.
        block_side_effects: install the audit hook that refuses processes, sockets and file writes.
        start_timeout_s: how long to wait for a worker to import its rewards and report ready.
        preload: reward specs imported (and warmed up) by every worker before it reports ready.
        base_dir: directory relative `file.py:fn` specs are resolved against (else the cwd).
    """

    def __init__(
        self,
        workers: int = 2,
        timeout_s: float = 5.0,
        memory_mb: int = 1024,
        max_error_fraction: float = 0.5,
        block_side_effects: bool = True,
        start_timeout_s: float = 120.0,
        preload: Sequence[str] = ("math",),
        base_dir: str | os.PathLike | None = None,
    ) -> None:
        if workers < 1 or timeout_s <= 0:
            raise ValueError("VerifierPool needs workers >= 1 and timeout_s > 0")
        self.timeout_s = float(timeout_s)
        self.memory_mb = int(memory_mb)
        self.max_error_fraction = float(max_error_fraction)
        self.block_side_effects = block_side_effects
        self.start_timeout_s = float(start_timeout_s)
        self.base_dir = base_dir
        self._specs: dict[str, str] = {}
        self._preload = tuple(self._spec(s) for s in preload)
        self._ctx = mp.get_context("spawn")
        self._workers: list[_Worker] = []
        self._start_failures = 0
        self._closed = False
        # One batch at a time: workers and their pipes are not shared between concurrent callers.
        self._lock = threading.Lock()
        # errors / timeouts (wall-clock kills) / restarts, plus the reward-side guards that decided an
        # item: `filtered` (refused before symbolic parsing) and `verify_timeouts` (Math-Verify's own).
        self.stats = {
            "items": 0,
            "errors": 0,
            "timeouts": 0,
            "restarts": 0,
            "filtered": 0,
            "verify_timeouts": 0,
        }
        for _ in range(workers):
            self._workers.append(self._start_worker())

    # ---- lifecycle ----

    def _start_worker(self) -> _Worker:
        from rlvr.reward import _worker

        parent_conn, child_conn = self._ctx.Pipe(duplex=True)
        proc = self._ctx.Process(
            target=_worker.worker_main,
            args=(child_conn, self.memory_mb, self.block_side_effects, self._preload),
            daemon=True,
            name="rlvr-reward-worker",
        )
        proc.start()
        # Only the child holds its end now, so a dead worker shows up as EOF here.
        child_conn.close()
        return _Worker(proc=proc, conn=parent_conn, started_at=time.monotonic())

    def _kill(self, worker: _Worker) -> None:
        if worker.proc.is_alive():
            worker.proc.kill()
        worker.proc.join(timeout=5)
        worker.conn.close()

    def _replace(self, worker: _Worker) -> None:
        self._kill(worker)
        self._workers[self._workers.index(worker)] = self._start_worker()
        self.stats["restarts"] += 1

    def close(self) -> None:
        """Stop every worker (EOF first, then SIGKILL after a short grace period)."""
        if self._closed:
            return
        self._closed = True
        for worker in self._workers:
            worker.conn.close()
        deadline = time.monotonic() + 0.5
        for worker in self._workers:
            worker.proc.join(timeout=max(0.0, deadline - time.monotonic()))
            if worker.proc.is_alive():
                worker.proc.kill()
                worker.proc.join(timeout=5)

    def __enter__(self) -> VerifierPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    def wait_ready(self, timeout_s: float | None = None) -> None:
        """Block until every worker has imported its rewards (they start in the background).

        Raises:
            RewardError: not all workers are ready within `timeout_s` (default: `start_timeout_s`).
        """
        limit = self.start_timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + limit
        while not all(w.ready for w in self._workers):
            if time.monotonic() > deadline:
                raise RewardError(f"reward workers not ready after {limit:.0f} s")
            self._wait_and_collect([])

    @property
    def worker_pids(self) -> list[int]:
        """Process ids of the current workers (they change when a worker is replaced)."""
        return [w.proc.pid for w in self._workers]

    # ---- scoring ----

    def _spec(self, fn: str) -> str:
        if fn not in self._specs:
            self._specs[fn] = worker_spec(fn, self.base_dir)
        return self._specs[fn]

    @staticmethod
    def _as_item(item: VerifyItem | tuple) -> VerifyItem:
        if isinstance(item, VerifyItem):
            return item
        completion, answer = item
        return VerifyItem(completion=completion, answer=answer)

    def score(
        self, items: Iterable[VerifyItem | tuple[str, Any]], check_errors: bool = True
    ) -> list[RewardResult]:
        """Run every item in the pool; results come back in input order.

        Args:
            items: `VerifyItem`s or `(completion, answer)` pairs (scored with the `math` reward).
            check_errors: raise RewardError when too many items fail (see `max_error_fraction`).

        Returns:
            One RewardResult per item; failed items have `error` set and `correct=False`.

        Raises:
            RewardError: too many items failed, or workers cannot start.
        """
        if self._closed:
            raise RewardError("VerifierPool is closed")
        items = [self._as_item(it) for it in items]
        tasks = [(self._spec(it.fn), it.completion, {"answer": it.answer, **it.kwargs}) for it in items]
        results: list[RewardResult | None] = [None] * len(tasks)
        with self._lock:
            self._run(tasks, results)
        done = [r for r in results if r is not None]
        assert len(done) == len(tasks)
        failed = [r for r in done if r.failed]
        self.stats["items"] += len(done)
        self.stats["timeouts"] += sum(r.timed_out for r in done)
        self.stats["errors"] += sum(r.error is not None and not r.timed_out for r in done)
        self.stats["filtered"] += sum(r.guard == "filter" for r in done)
        self.stats["verify_timeouts"] += sum(r.guard == "verify_timeout" for r in done)
        if check_errors and failed and len(failed) > self.max_error_fraction * len(done):
            raise RewardError(
                f"{len(failed)} of {len(done)} items failed verification "
                f"({sum(r.timed_out for r in failed)} timeouts); first error: {failed[0].error}"
            )
        return done

    def _run(self, tasks: list[tuple], results: list[RewardResult | None]) -> None:
        queue = deque(range(len(tasks)))
        while queue or any(w.task is not None for w in self._workers):
            for worker in self._workers:
                if worker.ready and worker.task is None and queue:
                    self._dispatch(worker, queue.popleft(), tasks)
            self._wait_and_collect(results)
            self._enforce_deadlines(results)

    def _dispatch(self, worker: _Worker, index: int, tasks: list[tuple]) -> None:
        worker.task = index
        worker.deadline = time.monotonic() + self.timeout_s
        try:
            worker.conn.send((index, *tasks[index]))
        except (BrokenPipeError, OSError, pickle.PicklingError, TypeError, AttributeError) as exc:
            worker.task = None
            if isinstance(exc, (BrokenPipeError, OSError)):
                raise RewardError(f"reward worker pipe broken: {exc}") from exc
            raise RewardError(f"item {index} cannot be sent to a worker (not picklable): {exc}") from exc

    def _wait_and_collect(self, results: list[RewardResult | None]) -> None:
        now = time.monotonic()
        busy = [w.deadline for w in self._workers if w.task is not None]
        wait_s = min([1.0, *[max(0.0, d - now) for d in busy]])
        by_conn = {w.conn: w for w in self._workers}
        for conn in wait_connections(list(by_conn), timeout=wait_s):
            worker = by_conn[conn]
            try:
                message = conn.recv()
            except (EOFError, OSError):
                self._on_death(worker, results)
                continue
            if message[0] == "ready":
                worker.ready = True
                self._start_failures = 0
            elif worker.task is not None and message[0] == worker.task:
                results[worker.task] = pickle.loads(message[1])
                worker.task = None
        self._check_starting()

    def _on_death(self, worker: _Worker, results: list[RewardResult | None]) -> None:
        worker.proc.join(timeout=5)
        code = worker.proc.exitcode
        if worker.task is not None:
            results[worker.task] = RewardResult(
                score=0.0, correct=False, error=death_message(code, self.memory_mb)
            )
        elif not worker.ready:
            self._start_failures += 1
            if self._start_failures >= MAX_START_FAILURES:
                raise RewardError(
                    f"reward workers failed to start {self._start_failures} times in a row (exit code {code}); "
                    "see the worker's stderr above (import error in a reward module? memory_mb too low?)"
                )
        self._replace(worker)

    def _check_starting(self) -> None:
        now = time.monotonic()
        if any(w.ready for w in self._workers):
            return
        oldest = min(w.started_at for w in self._workers)
        if now - oldest > self.start_timeout_s:
            raise RewardError(f"no reward worker became ready within {self.start_timeout_s:.0f} s")

    def _enforce_deadlines(self, results: list[RewardResult | None]) -> None:
        now = time.monotonic()
        for worker in list(self._workers):
            if worker.task is not None and now >= worker.deadline:
                results[worker.task] = RewardResult(
                    score=0.0,
                    correct=False,
                    error=f"timed out after {self.timeout_s:g} s (worker killed)",
                    timed_out=True,
                )
                worker.task = None
                self._replace(worker)
