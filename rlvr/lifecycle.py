"""A run's lifecycle: SIGTERM asks the loop to stop after the current step; parts close in reverse order.

A scheduler's preemption notice (SIGTERM) must not kill the driver mid-step: the loop finishes the step,
writes a checkpoint and returns. Shutting down must close every part even when one of them fails to close.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

log = logging.getLogger("rlvr.lifecycle")


def process_age_s() -> float:
    """Seconds since this process started (the interpreter, imports and start-up included)."""
    import psutil

    return time.time() - psutil.Process().create_time()


class StopFlag:
    """Set by SIGTERM (or `request`); the loop reads `requested` between steps."""

    def __init__(self) -> None:
        self.requested = False

    def request(self, *_: Any) -> None:
        self.requested = True

    def install(self) -> Any:
        """Route SIGTERM here; return the previous handler (None outside the main thread: no handler)."""
        try:
            return signal.signal(signal.SIGTERM, self.request)
        except ValueError:  # not the main thread (e.g. inside a test runner thread)
            return None


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[StopFlag]:
    """A `StopFlag` wired to SIGTERM for the duration of the block; the previous handler comes back after."""
    flag = StopFlag()
    previous = flag.install()
    try:
        yield flag
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def close_quietly(stack: contextlib.ExitStack, closer: Callable[[], Any]) -> None:
    """Register `closer` on `stack`; if it raises while shutting down, log it and go on closing the rest."""

    def close() -> None:
        try:
            closer()
        except Exception as exc:
            log.warning("error while closing %s: %s", getattr(closer, "__qualname__", closer), exc)

    stack.callback(close)
