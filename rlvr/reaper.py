"""A watchdog that kills what a driver started once the driver is gone, however it died (SIGKILL included).

`rlvr train` starts one (`start_reaper`) before Ray. It runs in its own session, so a Ctrl-C in the terminal
does not reach it, and every `POLL_S` it records the driver's descendants (the local Ray cluster's
processes, Ray workers and agents, vLLM engines, reward workers), each with its start time. When the driver
exits, the processes of the last record that are still alive (same pid and start time, so a reused pid is
never hit) and their children get SIGKILL. A clean shutdown leaves nothing for it to do; after a SIGKILL of
the driver it is the only thing that stops Ray's agents, which otherwise keep running, orphaned.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

POLL_S = 0.5


def _stat(pid: int) -> tuple[int, str, int] | None:
    """(parent pid, state, start time) of a process, or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return int(fields[1]), fields[0], int(fields[19])


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            info = _stat(int(entry))
            if info is not None:
                children.setdefault(info[0], []).append(int(entry))
    return children


def descendants(pid: int, children: dict[int, list[int]] | None = None) -> dict[int, int]:
    """Every live descendant of ``pid``: pid -> start time."""
    children = _children_map() if children is None else children
    out: dict[int, int] = {}
    stack = list(children.get(pid, []))
    while stack:
        child = stack.pop()
        info = _stat(child)
        if info is None or child in out:
            continue
        out[child] = info[2]
        stack.extend(children.get(child, []))
    return out


def _alive(pid: int, start: int) -> bool:
    info = _stat(pid)
    return info is not None and info[2] == start and info[1] != "Z"


def watch(driver: int, me: int) -> int:
    """Poll until ``driver`` is gone, then kill its last known descendants; return how many were killed."""
    start = _stat(driver)
    if start is None:
        return 0
    known: dict[int, int] = {}
    while _alive(driver, start[2]):
        known = {p: s for p, s in descendants(driver).items() if p != me}
        time.sleep(POLL_S)
    children = _children_map()
    doomed = {p: s for p, s in known.items() if _alive(p, s)}
    for pid in list(doomed):
        doomed.update({p: s for p, s in descendants(pid, children).items() if p != me})
    for pid, s in doomed.items():
        if _alive(pid, s):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    return len(doomed)


def start_reaper(driver: int | None = None) -> subprocess.Popen | None:
    """Start the watchdog for ``driver`` (default: this process). None where /proc is unavailable."""
    if not Path("/proc/self/stat").exists():
        return None
    driver = os.getpid() if driver is None else driver
    return subprocess.Popen(
        [sys.executable, "-m", "rlvr.reaper", str(driver)],
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


if __name__ == "__main__":
    watch(int(sys.argv[1]), os.getpid())
