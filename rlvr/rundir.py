"""A run directory has one owner at a time (a lock) and belongs to one recipe.

``rlvr train`` takes an exclusive ``fcntl`` lock on ``<run_dir>/.lock`` for its whole life, so a second
``rlvr train`` on the same directory is refused at once instead of interleaving metrics and checkpoints. The
kernel drops the lock when the process dies, however it dies, so a stale lock file never blocks a resume.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

LOCK_NAME = ".lock"


class RunDirError(RuntimeError):
    """The run directory is in use by another process or holds a different recipe's run."""


@contextlib.contextmanager
def run_dir_lock(run_dir: str | Path) -> Iterator[Path]:
    """Hold ``<run_dir>/.lock`` exclusively; raise RunDirError at once if another process holds it."""
    path = Path(run_dir) / LOCK_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            raise RunDirError(
                f"{run_dir} is in use by another `rlvr train` (pid {holder}); wait for it to finish, or "
                f"set a different logging.run_dir (or name)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def check_run_dir_recipe(run_dir: str | Path, recipe: dict[str, Any], resume: str | None) -> None:
    """Refuse a run directory that already holds a run of a different recipe.

    A different name, or a change that would break resume (`rlvr.checkpoint.compat`), means the directory
    belongs to another experiment: training into it would mix two runs' metrics and checkpoints.
    """
    from rlvr.checkpoint.compat import resume_incompatibilities

    saved_path = Path(run_dir) / "recipe.yaml"
    if not saved_path.is_file():
        return
    try:
        saved = yaml.safe_load(saved_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise RunDirError(
            f"{saved_path}: unreadable ({type(exc).__name__}); move the run directory away"
        ) from None
    if not isinstance(saved, dict):
        raise RunDirError(f"{saved_path}: not a recipe; move the run directory away")
    hint = "set a different logging.run_dir (or name), or move the old run away"
    if saved.get("name") != recipe.get("name"):
        raise RunDirError(
            f"{run_dir} belongs to recipe {saved.get('name')!r}, not {recipe.get('name')!r}; {hint}"
        )
    if resume:
        return  # resuming compares the recipe with the checkpoint's own copy (Run._check_resume_compatible)
    problems = resume_incompatibilities(saved, recipe)
    if problems:
        raise RunDirError(f"{run_dir} holds a run of a different recipe ({'; '.join(problems)}); {hint}")
