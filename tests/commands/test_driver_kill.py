"""A real `rlvr train` killed with SIGKILL or SIGINT mid-run leaves no process of the run behind.

On the way, the console up to the first step line is checked to carry no engine chatter.

The process tree of the driver (Ray's GCS, raylet, agents, the learner and rollout actors with their vLLM
engine, reward workers) is recorded once the first step is done; after the signal every one of them must be
gone within the deadline.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rlvr.reaper import _alive, descendants

ROOT = Path(__file__).resolve().parents[2]
STARTUP_S = 900


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:120]
    except OSError:
        return ""


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["sigkill", "sigint"])
def test_killed_driver_leaves_no_process_of_the_run(tmp_path, sig):
    cmd = [
        sys.executable,
        "-m",
        "rlvr.cli",
        "train",
        "recipes/quickstart.yaml",
        "train.steps=50",
        "train.prompts_per_step=8",
        "eval.every_steps=0",
        "checkpoint.every_steps=0",
        f"logging.run_dir={tmp_path / 'run'}",
    ]
    # The test reads the step lines from the console: keep them even where CI silences them (RLVR_PROGRESS=0).
    env = {**os.environ, "RLVR_PROGRESS": "1"}
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    seen = []
    try:
        deadline = time.monotonic() + STARTUP_S
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("step 1/") or time.monotonic() > deadline:
                break
        assert any(line.startswith("step 1/") for line in seen), "".join(seen[-30:])
        # The console so far: start-up lines and the step line; engine chatter went to run.log (which also
        # proves the initial weight sync, whose vLLM reload warns on every sync, stayed off the console).
        chatter = [
            line
            for line in seen
            if not line.startswith("rlvr")  # rlvr's own start-up lines name vLLM settings
            and ("vllm" in line.lower() or " INFO " in line or "Failed to load weights" in line)
        ]
        assert not chatter, "".join(chatter)
        assert "Failed to load weights" in (tmp_path / "run" / "run.log").read_text()
        tree = descendants(proc.pid)
        assert any("raylet" in _cmdline(p) for p in tree), {p: _cmdline(p) for p in tree}
        os.kill(proc.pid, sig)
        proc.wait(timeout=120)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(_alive(p, s) for p, s in tree.items()):
            time.sleep(0.5)
        left = {p: _cmdline(p) for p, s in tree.items() if _alive(p, s)}
        assert not left, f"left running after {sig.name}: {left}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if sig == signal.SIGINT:
        assert proc.returncode == 130
