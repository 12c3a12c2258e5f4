"""The body of a reward worker process (see `rlvr.reward.sandbox`): import, confine, then serve items.

Runs in a freshly spawned interpreter. Nothing here may raise past `serve`: every failure of a reward
becomes an error result, so the parent only ever sees results, EOF (the worker died) or silence (hung).
"""

from __future__ import annotations

import inspect
import os
import pickle
import resource
import signal
import sys
import traceback
from collections.abc import Callable
from typing import Any

from rlvr.reward.registry import resolve_reward
from rlvr.reward.types import RewardResult, coerce_result

_BLOCKED_EVENTS = frozenset(
    {
        "os.system",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.fork",
        "os.forkpty",
        "subprocess.Popen",
        "pty.spawn",
        "socket.connect",
        "socket.bind",
        "os.kill",
        "os.killpg",
        "os.remove",
        "os.rename",
        "os.rmdir",
        "os.mkdir",
        "os.symlink",
        "os.link",
        "os.truncate",
        "os.chmod",
        "os.chown",
        "shutil.rmtree",
    }
)
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _audit_hook(event: str, args: tuple) -> None:
    """Refuse side effects. Raises PermissionError (an OSError) so callers' `except OSError` paths work."""
    if event in _BLOCKED_EVENTS:
        raise PermissionError(f"rlvr reward sandbox: {event} is not allowed")
    if event == "open" and len(args) >= 3 and not isinstance(args[0], int):
        mode, flags = args[1], args[2]
        writes = (
            any(c in mode for c in "wax+") if isinstance(mode, str) else bool((flags or 0) & _WRITE_FLAGS)
        )
        if writes:
            raise PermissionError(f"rlvr reward sandbox: writing {args[0]!r} is not allowed")


def _vm_size_bytes() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def confine(memory_mb: int, block_side_effects: bool) -> None:
    """Apply the memory limit (above the current footprint), no core dumps, and the audit hook."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    limit = _vm_size_bytes() + memory_mb * 1024 * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    if block_side_effects:
        sys.addaudithook(_audit_hook)


class _Rewards:
    """Spec string -> function, imported once per worker; keyword arguments filtered per signature."""

    def __init__(self) -> None:
        self._fns: dict[str, tuple[Callable[..., Any], frozenset[str] | None]] = {}

    def get(self, spec: str) -> tuple[Callable[..., Any], frozenset[str] | None]:
        if spec not in self._fns:
            fn = resolve_reward(spec)
            try:
                params = inspect.signature(fn).parameters.values()
                names = None
                if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
                    names = frozenset(p.name for p in params)
            except (TypeError, ValueError):
                names = None
            self._fns[spec] = (fn, names)
        return self._fns[spec]

    def call(self, spec: str, completion: str, kwargs: dict[str, Any]) -> RewardResult:
        fn, names = self.get(spec)
        if names is not None:
            # Row fields a function does not declare are dropped, so `fn(completion, *, answer)` works.
            kwargs = {k: v for k, v in kwargs.items() if k in names}
        return coerce_result(fn(completion, **kwargs), spec)


def _error(spec: str, exc: BaseException) -> RewardResult:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {os.path.basename(frames[-1].filename)}:{frames[-1].lineno}" if frames else ""
    return RewardResult(
        score=0.0, correct=False, error=f"reward {spec} raised {type(exc).__name__}: {exc}"[:2000] + where
    )


def serve(conn: Any, rewards: _Rewards) -> None:
    """Answer `(task_id, spec, completion, kwargs)` messages until the parent closes the pipe."""
    while True:
        try:
            task_id, spec, completion, kwargs = conn.recv()
        except (EOFError, OSError):
            return
        try:
            result = rewards.call(spec, completion, kwargs)
        except BaseException as exc:  # includes Math-Verify's TimeoutException(BaseException)
            result = _error(spec, exc)
        try:
            payload = pickle.dumps(result)
        except BaseException as exc:
            payload = pickle.dumps(_error(spec, RuntimeError(f"result is not picklable: {exc}")))
        try:
            conn.send((task_id, payload))
        except OSError:
            return


def worker_main(conn: Any, memory_mb: int, block_side_effects: bool, preload: tuple[str, ...]) -> None:
    """Entry point of a spawned worker: preload and warm up rewards, confine, report ready, serve."""
    # Ctrl-C goes to the whole process group; the parent decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.dont_write_bytecode = True
    rewards = _Rewards()
    for spec in preload:
        rewards.get(spec)
    if any(s in ("math", "gsm8k") for s in preload):
        # First calls import sympy / latex2sympy lazily; do it before the clock and the sandbox start.
        rewards.call("math", "\\boxed{\\frac{1}{2}}", {"answer": "0.5"})
    confine(memory_mb, block_side_effects)
    try:
        conn.send(("ready",))
    except OSError:
        return  # the pool was closed while this worker was starting
    serve(conn, rewards)
