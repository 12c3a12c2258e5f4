"""SIGKILL a checkpoint writer at every phase; resume must only ever see complete checkpoints."""

from __future__ import annotations

import os
import random
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rlvr.checkpoint import POINTER_NAME, CheckpointManager, read_manifest, verify_checkpoint

WRITER = Path(__file__).with_name("crash_writer.py")
FILES = 6


def start_writer(root: Path, start: int, count: int, hang_at: str = "none") -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(WRITER), str(root), str(start), str(count), str(FILES), hang_at],
        stdout=subprocess.PIPE,
        text=True,
    )


def wait_for_line(proc: subprocess.Popen, wanted: str, timeout: float = 20.0) -> None:
    """Read the writer's progress lines until ``wanted`` appears."""
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if selector.select(timeout=0.5):
            line = proc.stdout.readline()
            if not line:
                break
            if line.strip() == wanted:
                return
    raise AssertionError(f"writer never printed {wanted!r} (exit code {proc.poll()})")


def kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)  # reaped, so its pid is dead for the stale-dir cleanup
    proc.stdout.close()


def assert_checkpoint_content(path: Path, writer_module) -> int:
    """The checkpoint is complete and byte-identical to what the writer meant to write."""
    assert verify_checkpoint(path, deep=True)
    step = read_manifest(path)["step"]
    assert path.name == f"step_{step:06d}"
    for index in range(FILES):
        assert (path / f"part_{index}.bin").read_bytes() == writer_module.payload(step, index)
    return step


def scratch_dirs(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith((".tmp-", ".trash-")))


def test_kill_mid_write_keeps_previous_checkpoint(tmp_path, writer_module):
    first = start_writer(tmp_path, 1, 1)
    assert first.wait(timeout=30) == 0
    first.stdout.close()

    proc = start_writer(tmp_path, 2, 1)
    wait_for_line(proc, "FILE 2 3")
    kill(proc)
    assert scratch_dirs(tmp_path), "the killed writer should have left its temp dir"

    manager = CheckpointManager(tmp_path, keep_last=2)
    assert scratch_dirs(tmp_path) == []
    assert manager.latest() == tmp_path / "step_000001"
    assert manager.resolve("auto") == tmp_path / "step_000001"
    assert assert_checkpoint_content(manager.latest(), writer_module) == 1
    assert not (tmp_path / "step_000002").exists()


def test_kill_between_rename_and_pointer_update(tmp_path, writer_module):
    first = start_writer(tmp_path, 1, 1)
    assert first.wait(timeout=30) == 0
    first.stdout.close()

    proc = start_writer(tmp_path, 2, 1, hang_at="pointer")
    wait_for_line(proc, "RENAMED step_000002")
    kill(proc)

    manager = CheckpointManager(tmp_path, keep_last=2)
    # The pointer is the commit point: step 2 was never committed, so resume uses step 1.
    assert manager.resolve("auto") == tmp_path / "step_000001"
    assert_checkpoint_content(manager.latest(), writer_module)
    # The orphan is nevertheless complete, so losing the pointer cannot expose a partial dir.
    (tmp_path / POINTER_NAME).unlink()
    assert assert_checkpoint_content(manager.latest(), writer_module) == 2


def test_kill_during_retention_leaves_new_checkpoint_committed(tmp_path, writer_module):
    first = start_writer(tmp_path, 1, 2)
    assert first.wait(timeout=30) == 0
    first.stdout.close()

    proc = start_writer(tmp_path, 3, 1, hang_at="retention")
    wait_for_line(proc, "RETENTION")
    kill(proc)

    manager = CheckpointManager(tmp_path, keep_last=2)
    assert manager.latest() == tmp_path / "step_000003"
    assert assert_checkpoint_content(manager.latest(), writer_module) == 3
    assert [s for s, _ in manager.complete_checkpoints()] == [1, 2, 3]
    manager.apply_retention()
    assert [s for s, _ in manager.complete_checkpoints()] == [2, 3]


@pytest.mark.parametrize("seed", [0, 1])
def test_random_kills_never_expose_partial_checkpoint(tmp_path, writer_module, seed):
    rng = random.Random(seed)
    next_step, last_seen = 1, 0
    for _ in range(6):
        proc = start_writer(tmp_path, next_step, 3)
        # Kill at a random moment of the writing itself, not of the interpreter's start-up (seconds on a loaded
        # machine, where every kill used to land before the first file and the run proved nothing).
        wait_for_line(proc, f"STAGED {next_step}", timeout=120)
        time.sleep(rng.uniform(0.0, 0.4))
        kill(proc)
        manager = CheckpointManager(tmp_path, keep_last=2)
        assert scratch_dirs(tmp_path) == []
        latest = manager.latest()
        if latest is not None:
            step = assert_checkpoint_content(latest, writer_module)
            assert step >= last_seen
            last_seen = step
            next_step = step + 1
        for _, path in manager.step_dirs():
            assert verify_checkpoint(path), f"{path.name} is under a step_* name but incomplete"
    assert os.listdir(tmp_path)
