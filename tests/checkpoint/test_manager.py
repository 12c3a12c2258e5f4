"""CheckpointManager: commit layout, pointer fallback, resolve, retention, stale cleanup."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rlvr.checkpoint import (
    MANIFEST_NAME,
    POINTER_NAME,
    CheckpointError,
    CheckpointManager,
    read_manifest,
    step_dir_name,
    verify_checkpoint,
)


def write_ckpt(manager: CheckpointManager, step: int, files: dict[str, bytes] | None = None, **kw):
    staged = manager.stage(step)
    for name, data in (files or {"model.bin": b"w" * (10 + step), "sub/opt.bin": b"o" * step}).items():
        (staged / name).parent.mkdir(parents=True, exist_ok=True)
        (staged / name).write_bytes(data)
    return manager.commit(staged, step, {"recipe": {"seed": 1}}, **kw)


def test_commit_layout_and_manifest(tmp_path):
    manager = CheckpointManager(tmp_path)
    staged = manager.stage(10)
    assert staged.parent == tmp_path and staged.name.startswith(".tmp-step_000010-")
    final = write_ckpt(manager, 10, sha256=True)
    assert final == tmp_path / "step_000010"
    assert not staged.exists()
    assert (tmp_path / POINTER_NAME).read_text().strip() == "step_000010"
    manifest = read_manifest(final)
    assert manifest["step"] == 10
    assert manifest["user"] == {"recipe": {"seed": 1}}
    assert manifest["files"]["model.bin"]["size"] == 20
    assert manifest["files"]["sub/opt.bin"]["size"] == 10
    assert len(manifest["files"]["model.bin"]["sha256"]) == 64
    assert MANIFEST_NAME not in manifest["files"]
    assert manager.latest() == final


def test_empty_root_and_fresh_start(tmp_path):
    manager = CheckpointManager(tmp_path / "new")
    assert manager.latest() is None
    assert manager.resolve("auto") is None
    assert manager.resolve(None) is None
    assert manager.resolve("none") is None


def test_verify_detects_truncation_and_deep_corruption(tmp_path):
    manager = CheckpointManager(tmp_path)
    final = write_ckpt(manager, 1, sha256=True)
    assert verify_checkpoint(final, deep=True)
    (final / "model.bin").write_bytes(b"x" * 11)  # same size, different bytes
    assert verify_checkpoint(final)
    assert not verify_checkpoint(final, deep=True)
    (final / "model.bin").write_bytes(b"x")
    assert not verify_checkpoint(final)


@pytest.mark.parametrize("pointer", ["garbage\x00\xff", "", "step_000099", "../etc", "step_000002"])
def test_bad_pointer_falls_back_to_highest_complete(tmp_path, pointer):
    manager = CheckpointManager(tmp_path)
    write_ckpt(manager, 1)
    write_ckpt(manager, 2)
    write_ckpt(manager, 3)
    (tmp_path / "step_000003" / MANIFEST_NAME).unlink()  # step 3 is now incomplete
    (tmp_path / POINTER_NAME).write_text(pointer, errors="surrogateescape")
    assert manager.latest() == tmp_path / "step_000002"


def test_missing_pointer_uses_scan(tmp_path):
    manager = CheckpointManager(tmp_path)
    write_ckpt(manager, 1)
    write_ckpt(manager, 5)
    (tmp_path / POINTER_NAME).unlink()
    assert manager.latest() == tmp_path / "step_000005"


def test_pointer_wins_over_newer_uncommitted_dir(tmp_path):
    manager = CheckpointManager(tmp_path)
    write_ckpt(manager, 1)
    write_ckpt(manager, 2)
    (tmp_path / POINTER_NAME).write_text("step_000001\n")
    assert manager.latest() == tmp_path / "step_000001"


def test_resolve_explicit_paths(tmp_path):
    manager = CheckpointManager(tmp_path / "run")
    write_ckpt(manager, 1)
    second = write_ckpt(manager, 2)
    assert manager.resolve(str(second)) == second
    assert manager.resolve(tmp_path / "run" / "step_000001") == tmp_path / "run" / "step_000001"
    # A checkpoint root resolves to its own latest.
    assert CheckpointManager(tmp_path / "other").resolve(tmp_path / "run") == second
    with pytest.raises(CheckpointError, match="does not exist"):
        manager.resolve(tmp_path / "nope")
    (second / "model.bin").write_bytes(b"")
    with pytest.raises(CheckpointError, match="incomplete"):
        manager.resolve(second)
    with pytest.raises(CheckpointError, match="no complete checkpoint"):
        manager.resolve(tmp_path / "other")


def test_keep_last_retention(tmp_path):
    manager = CheckpointManager(tmp_path, keep_last=2)
    for step in range(1, 6):
        write_ckpt(manager, step)
    assert [s for s, _ in manager.step_dirs()] == [4, 5]
    assert manager.latest() == tmp_path / "step_000005"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_retention_never_deletes_pointer_target(tmp_path):
    manager = CheckpointManager(tmp_path, keep_last=None)
    for step in range(1, 5):
        write_ckpt(manager, step)
    (tmp_path / POINTER_NAME).write_text("step_000001\n")
    manager.keep_last = 1
    deleted = manager.apply_retention()
    assert sorted(p.name for p in deleted) == ["step_000002", "step_000003"]
    assert [s for s, _ in manager.step_dirs()] == [1, 4]


def test_keep_all_when_keep_last_none_or_zero(tmp_path):
    for keep in (None, 0):
        manager = CheckpointManager(tmp_path / str(keep), keep_last=keep)
        for step in range(1, 5):
            write_ckpt(manager, step)
        assert len(manager.step_dirs()) == 4


def test_recommit_same_step_replaces(tmp_path):
    manager = CheckpointManager(tmp_path)
    write_ckpt(manager, 3, {"a.bin": b"old"})
    final = write_ckpt(manager, 3, {"b.bin": b"newer"})
    assert sorted(read_manifest(final)["files"]) == ["b.bin"]
    assert not (final / "a.bin").exists()
    assert manager.latest() == final


def test_commit_after_resume_from_earlier_sets_future_aside(tmp_path):
    manager = CheckpointManager(tmp_path, keep_last=2)
    for step in (2, 4, 6):
        write_ckpt(manager, step)
    with pytest.warns(UserWarning, match="step_000006"):
        write_ckpt(manager, 5)
    assert [s for s, _ in manager.step_dirs()] == [4, 5]
    assert (tmp_path / "superseded-step_000006").is_dir()
    (tmp_path / POINTER_NAME).unlink()
    assert manager.latest() == tmp_path / "step_000005"


def test_stage_twice_gives_empty_dir(tmp_path):
    manager = CheckpointManager(tmp_path)
    staged = manager.stage(7)
    (staged / "junk").write_text("x")
    assert list(manager.stage(7).iterdir()) == []


def test_cleanup_removes_dead_writers_only(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(dead.stdout)
    (tmp_path / f".tmp-{step_dir_name(3)}-{dead_pid}").mkdir()
    (tmp_path / f".trash-{step_dir_name(1)}-{dead_pid}").mkdir()
    (tmp_path / f".{POINTER_NAME}.tmp-{dead_pid}").write_text("step_000003")
    mine = CheckpointManager(tmp_path).stage(4)
    removed = CheckpointManager(tmp_path).cleanup_stale()
    assert removed == []  # the first manager already cleaned the dead ones
    assert [p.name for p in tmp_path.iterdir()] == [mine.name]


def test_manifest_is_json_with_user_metadata(tmp_path):
    manager = CheckpointManager(tmp_path)
    final = write_ckpt(manager, 0)
    data = json.loads((final / MANIFEST_NAME).read_text())
    assert data["format"] == 1 and data["step"] == 0
