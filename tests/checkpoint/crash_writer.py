"""Subprocess used by the crash tests: writes checkpoints slowly and reports its progress.

Usage: ``python crash_writer.py ROOT START_STEP NUM_CHECKPOINTS FILES_PER_CKPT HANG_AT``

Prints one line per event (``STAGED s``, ``FILE s i``, ``RENAMED s``, ``COMMITTED s``) and
flushes, so the parent can SIGKILL it at a known point. ``HANG_AT`` is a fault-injection point
(``none``, ``pointer``: block forever after the rename and before the ``latest`` update,
``retention``: block forever inside retention after the pointer update).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from rlvr.checkpoint import CheckpointManager


def payload(step: int, index: int) -> bytes:
    """Deterministic content of file ``index`` of checkpoint ``step`` (the test checks it)."""
    return (f"step={step} file={index} ".encode() * (200 + 50 * index))[: 4096 + index]


def say(line: str) -> None:
    print(line, flush=True)


class HangingManager(CheckpointManager):
    """Fault injection: stops forever at a chosen commit phase."""

    hang_at = "none"

    def _publish_pointer(self, name: str) -> None:
        say(f"RENAMED {name}")
        if self.hang_at == "pointer":
            time.sleep(3600)
        super()._publish_pointer(name)

    def apply_retention(self):
        if self.hang_at == "retention":
            say("RETENTION")
            time.sleep(3600)
        return super().apply_retention()


def main() -> None:
    root, start, count, files, hang_at = sys.argv[1:6]
    manager = HangingManager(Path(root), keep_last=2)
    manager.hang_at = hang_at
    for step in range(int(start), int(start) + int(count)):
        staged = manager.stage(step)
        say(f"STAGED {step}")
        for index in range(int(files)):
            (staged / f"part_{index}.bin").write_bytes(payload(step, index))
            say(f"FILE {step} {index}")
            time.sleep(0.02)
        manager.commit(staged, step, {"step": step})
        say(f"COMMITTED {step}")


if __name__ == "__main__":
    main()
