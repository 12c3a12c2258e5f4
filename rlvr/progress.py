"""Progress lines for the long phases a person waits on: the tiny build's SFT, evaluation passes,
checkpoint writes. One line each on stderr; `RLVR_PROGRESS=0` silences them, as it does the per-step line.
"""

from __future__ import annotations

import os
import sys


def progress_enabled() -> bool:
    return os.environ.get("RLVR_PROGRESS", "1") != "0"


def progress(message: str) -> None:
    """Print one progress line (unless `RLVR_PROGRESS=0`)."""
    if progress_enabled():
        print(message, file=sys.stderr, flush=True)


def duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``1h02m``."""
    s = max(round(seconds), 0)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def eta(done: int, total: int, elapsed: float) -> str:
    """Time left at the average rate so far, e.g. ``ETA 3m05s`` (``ETA ?`` before the first unit is done)."""
    if done <= 0:
        return "ETA ?"
    return "ETA " + duration(elapsed / done * max(total - done, 0))


def size(num_bytes: float) -> str:
    """``512 MB``, ``1.62 GB`` (powers of 1000, like ``ls -h --si``)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if num_bytes >= scale:
            return f"{num_bytes / scale:.3g} {unit}"
    return f"{int(num_bytes)} B"
