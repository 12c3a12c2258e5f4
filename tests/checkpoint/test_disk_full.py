"""A full disk during a checkpoint write: a clear message, `latest` unchanged, nothing partial left to resume.

The real case runs on a small tmpfs mounted by the test (root only, skipped elsewhere); the same contract is
also checked with the ENOSPC raised by a writer the test passes in, and wrapped the way a learner rank's
failure reaches the driver.
"""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest

from rlvr.checkpoint.manager import CheckpointError, CheckpointManager, verify_checkpoint


def small_writer(staged: Path) -> None:
    (staged / "weights.bin").write_bytes(b"w" * 1024)
    (staged / "trainer_state.json").write_text('{"step": 1}')


def big_writer(staged: Path) -> None:
    (staged / "trainer_state.json").write_text('{"step": 2}')
    with open(staged / "weights.bin", "wb") as f:
        for _ in range(64):
            f.write(b"w" * 64 * 1024)  # 4 MiB: more than the test's tmpfs holds


def assert_previous_checkpoint_intact(root: Path, err: CheckpointError) -> None:
    message = str(err)
    assert "step 2 not written" in message and "no space left" in message
    assert "`latest` still names step_000001" in message and "--resume auto" in message
    assert "\n" not in message
    assert (root / "latest").read_text().strip() == "step_000001"
    assert [p.name for p in root.iterdir() if p.name != "latest"] == ["step_000001"]  # no temp dir left
    fresh = CheckpointManager(root)
    assert fresh.resolve("auto") == root / "step_000001"
    assert verify_checkpoint(root / "step_000001", deep=True)


@pytest.fixture
def small_tmpfs(tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mnt)], capture_output=True)
    if out.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {out.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_disk_full_on_real_small_filesystem(small_tmpfs):
    root = small_tmpfs / "checkpoints"
    manager = CheckpointManager(root, keep_last=2)
    manager.save(1, small_writer, {"step": 1})
    with pytest.raises(CheckpointError) as err:
        manager.save(2, big_writer, {"step": 2})
    assert_previous_checkpoint_intact(root, err.value)
    manager.save(2, small_writer, {"step": 2})  # space is back: the next save works
    assert manager.latest() == root / "step_000002"


def test_disk_full_injected_by_the_writer(tmp_path):
    root = tmp_path / "checkpoints"
    manager = CheckpointManager(root)
    manager.save(1, small_writer)

    def failing_writer(staged: Path) -> None:
        (staged / "weights.bin").write_bytes(b"half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(staged / "weights.bin"))

    with pytest.raises(CheckpointError) as err:
        manager.save(2, failing_writer)
    assert_previous_checkpoint_intact(root, err.value)


def test_disk_full_reported_through_a_wrapped_learner_error(tmp_path):
    """A rank's ENOSPC reaches the driver as text inside another error (Ray task error, LearnerError)."""
    root = tmp_path / "checkpoints"
    manager = CheckpointManager(root)
    manager.save(1, small_writer)

    class LearnerError(RuntimeError):
        pass

    def failing_writer(staged: Path) -> None:
        raise LearnerError("learner call 'save' failed: OSError: [Errno 28] No space left on device")

    with pytest.raises(CheckpointError) as err:
        manager.save(2, failing_writer)
    assert_previous_checkpoint_intact(root, err.value)


def test_other_write_errors_propagate_and_leave_nothing(tmp_path):
    root = tmp_path / "checkpoints"
    manager = CheckpointManager(root)
    manager.save(1, small_writer)

    def broken(staged: Path) -> None:
        raise ValueError("learner exploded")

    with pytest.raises(ValueError, match="learner exploded"):
        manager.save(2, broken)
    assert sorted(p.name for p in root.iterdir()) == ["latest", "step_000001"]
