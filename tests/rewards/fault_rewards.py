"""Fault-injection rewards for the sandbox tests, loaded by file path (`fault_rewards.py:hang`)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from math_verify.errors import TimeoutException


def hang(completion, *, answer, **row):
    while True:
        time.sleep(0.01)


def busy(completion, *, answer, **row):
    x = 0
    while True:
        x += 1


def hog(completion, *, answer, **row):
    # bytes() is calloc-backed: address space is reserved without touching pages, so this is fast.
    blocks = [bytes(256 * 1024 * 1024) for _ in range(64)]  # 16 GB, far above the limit
    return float(len(blocks))


def die(completion, *, answer, **row):
    os._exit(3)


def mv_timeout(completion, *, answer, **row):
    raise TimeoutException("simulated math-verify timeout")


def side_effects(completion, *, answer, **row):
    """Try every escape the sandbox must refuse; report which ones got through."""
    escaped = []
    attempts = {
        "system": lambda: os.system("touch PWNED_SYSTEM"),
        "write": lambda: Path("PWNED_WRITE").write_text("x"),
        "mkdir": lambda: os.mkdir("PWNED_DIR"),
        "kill": lambda: os.kill(os.getppid(), 0),
    }
    for name, attempt in attempts.items():
        try:
            attempt()
            escaped.append(name)
        except PermissionError:
            pass
    return 1.0 if escaped else 0.0


def ok(completion, *, answer, **row):
    return 1.0 if str(answer) in completion else 0.0
