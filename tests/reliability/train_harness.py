"""A real `rlvr train` of a three-step quickstart run, watched and disturbed from outside (helpers).

Faults are injected the way they happen: the test finds an actor's process in the driver's process tree by
the title Ray gives it while it runs a call (`ray::RolloutWorker.generate`, `ray::_LearnerActor.update`) and
sends it SIGKILL (a crash) or SIGSTOP (a hang). Every process the run ever had is recorded, so a test can
assert that none is left once the driver has exited.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rlvr.reaper import _alive, descendants

ROOT = Path(__file__).resolve().parents[2]
STEPS = 3
PROMPTS = 8
SAMPLES = 4
SMALL_RUN = [
    f"train.steps={STEPS}",
    f"train.prompts_per_step={PROMPTS}",
    f"rollout.samples_per_prompt={SAMPLES}",
    "eval.every_steps=0",
    "checkpoint.every_steps=1",
]
# Step metrics that must not change when a rollout worker is replaced mid-step (same prompts, same seeds).
SAME_AS_UNDISTURBED = ["reward/mean", "accuracy/mean", "response_length/mean", "response_length/max"]


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


class TrainProcess:
    """`rlvr train recipes/quickstart.yaml` (three small steps) in a subprocess, with its console captured."""

    def __init__(self, run_dir: Path, *overrides: str, resume: bool = False) -> None:
        self.run_dir = run_dir
        cmd = [sys.executable, "-m", "rlvr.cli", "train", "recipes/quickstart.yaml", *SMALL_RUN]
        cmd += [f"logging.run_dir={run_dir}", *overrides] + (["--resume", "auto"] if resume else [])
        # The tests read the console: keep its step and progress lines even where CI silences them.
        env = {**os.environ, "RLVR_PROGRESS": "1"}
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        self.lines: list[str] = []
        self.seen: dict[int, int] = {}  # every process of the run ever seen: pid -> start time
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def console(self) -> str:
        return "".join(self.lines)

    def tree(self) -> dict[int, int]:
        tree = descendants(self.proc.pid)
        self.seen.update(tree)
        return tree

    def actor(self, title: str, exclude: set[int] | frozenset[int] = frozenset()) -> int | None:
        """Pid of a live process of this run whose title starts with ``title`` (e.g. a call in progress)."""
        for pid in self.tree():
            if pid not in exclude and cmdline(pid).startswith(title):
                return pid
        return None

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float = 600.0) -> Any:
        """Poll ``check`` (recording the process tree) until it returns something truthy."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = check()
            if found:
                return found
            if self.proc.poll() is not None:
                pytest.fail(
                    f"rlvr train exited ({self.proc.returncode}) before {what}:\n{self.console[-3000:]}"
                )
            time.sleep(0.1)
        pytest.fail(f"no {what} within {timeout:.0f} s:\n{self.console[-3000:]}")

    def wait_step_line(self, step: int) -> None:
        self.wait_for(f"step {step}", lambda: any(ln.startswith(f"step {step}/") for ln in self.lines))

    def finish(self, timeout: float = 900.0) -> int:
        """Wait for the driver to exit (recording its tree meanwhile); returns the exit code."""
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            self.tree()
            time.sleep(0.2)
        if self.proc.poll() is None:
            pytest.fail(f"rlvr train still running after {timeout:.0f} s:\n{self.console[-3000:]}")
        self._reader.join(timeout=10)
        return self.proc.returncode

    def leftovers(self, grace_s: float = 60.0) -> dict[int, str]:
        """Processes of the run still alive ``grace_s`` after the driver exited (none expected)."""
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and any(_alive(p, s) for p, s in self.seen.items()):
            time.sleep(0.5)
        return {p: cmdline(p)[:120] for p, s in self.seen.items() if _alive(p, s)}

    def metrics(self) -> list[dict[str, Any]]:
        path = self.run_dir / "metrics.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def kill_all(self) -> None:
        """Test cleanup: the driver and anything of its run still alive (a stopped process included)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for pid, start in self.seen.items():
            if _alive(pid, start):
                for sig in (signal.SIGKILL, signal.SIGCONT):
                    with contextlib.suppress(OSError):
                        os.kill(pid, sig)


def assert_every_step_complete(metrics: list[dict[str, Any]]) -> None:
    """Each step logged once, and every one scored exactly prompts_per_step x samples_per_prompt samples."""
    assert [m["step"] for m in metrics] == list(range(1, STEPS + 1)), [m["step"] for m in metrics]
    for m in metrics:
        assert m["reward_pool/scored_samples"] == PROMPTS * SAMPLES, (
            m["step"],
            m["reward_pool/scored_samples"],
        )


def latest_checkpoint(run_dir: Path) -> str:
    return (run_dir / "checkpoints" / "latest").read_text().strip()


def checkpoint_dirs(run_dir: Path) -> list[str]:
    return sorted(p.name for p in (run_dir / "checkpoints").iterdir() if p.is_dir())
