"""Atomic checkpoint directories: stage, commit, find the latest complete one, retain the last N.

Layout under ``root``::

    root/
      step_000010/            a complete checkpoint (renamed into place only after MANIFEST.json)
        MANIFEST.json         file list + sizes (+ sha256), the user's manifest, the step
        ...                   whatever the trainer wrote (weights, optimizer, trainer_state.*)
      step_000020/
      latest                  text file naming the current checkpoint ("step_000020"), replaced atomically
      .tmp-step_000030-4242/  being written by pid 4242 (or left behind by a crash)

Commit order, and what a crash at each point leaves behind:

1. The writer fills ``.tmp-step_N-<pid>``.            Crash: temp dir only; ``latest`` unchanged.
2. ``MANIFEST.json`` is written and everything fsynced. Crash: same.
3. The temp dir is renamed to ``step_N``.              Crash: a complete ``step_N`` that ``latest``
   does not name yet; it is ignored while the pointer is valid (the pointer is the commit point).
4. ``latest`` is replaced atomically.                  The checkpoint is now committed.
5. Old checkpoints beyond ``keep_last`` are renamed to ``.trash-*`` and deleted.

Committing step N after resuming from an earlier checkpoint renames any ``step_*`` newer than N
to ``superseded-step_*`` (kept for the user, invisible to resume and retention).

Readers (:meth:`CheckpointManager.latest`) accept a directory only if its manifest verifies
(every listed file exists with the recorded size), so no partially written checkpoint is ever
picked. If ``latest`` is missing, garbage or names a directory that fails verification, the
highest complete ``step_*`` directory is used instead.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rlvr.checkpoint.atomic import atomic_write_text, fsync_dir, fsync_file
from rlvr.progress import progress, size

MANIFEST_NAME = "MANIFEST.json"
POINTER_NAME = "latest"
MANIFEST_FORMAT = 1
STEP_PREFIX = "step_"
TMP_PREFIX = ".tmp-"
TRASH_PREFIX = ".trash-"
SUPERSEDED_PREFIX = "superseded-"

_STEP_RE = re.compile(r"^step_(\d+)$")
# Temp and trash names end in the writer's pid so a new manager can tell dead writers from live ones.
_SCRATCH_RE = re.compile(r"^\.(?:tmp|trash)-.*-(\d+)$")


class CheckpointError(RuntimeError):
    """A checkpoint that was asked for explicitly is missing or incomplete, or could not be written."""


def _is_disk_full(exc: BaseException | None) -> bool:
    """True if ``exc`` or anything it wraps (a Ray task error from a learner rank, a chained cause) is ENOSPC."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "No space left on device" in str(exc) or "Disk quota exceeded" in str(exc):
            return True
        exc = getattr(exc, "cause", None) or exc.__cause__ or exc.__context__
    return False


def _free_mb(path: Path) -> float:
    try:
        return shutil.disk_usage(path).free / 2**20
    except OSError:
        return float("nan")


def step_dir_name(step: int) -> str:
    """Directory name of the checkpoint for ``step`` (``step_000010``)."""
    if step < 0:
        raise ValueError(f"checkpoint step must be >= 0, got {step}")
    return f"{STEP_PREFIX}{step:06d}"


def parse_step(name: str) -> int | None:
    """Step number encoded in a checkpoint directory name, or None if it is not one."""
    match = _STEP_RE.match(name)
    return int(match.group(1)) if match else None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_manifest(path: str | os.PathLike) -> dict[str, Any] | None:
    """The parsed ``MANIFEST.json`` of a checkpoint directory, or None if absent or unreadable."""
    try:
        data = json.loads((Path(path) / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def verify_checkpoint(path: str | os.PathLike, *, deep: bool = False) -> bool:
    """True if ``path`` is a complete checkpoint.

    Args:
        path: A ``step_*`` directory.
        deep: Also recompute sha256 for files whose manifest entry has one (reads every byte).

    Returns:
        Whether the manifest exists, parses, and every listed file exists with its recorded size
        (and hash when ``deep``).
    """
    path = Path(path)
    manifest = read_manifest(path)
    if manifest is None or manifest.get("format") != MANIFEST_FORMAT:
        return False
    files = manifest.get("files")
    if not isinstance(files, dict):
        return False
    for rel, entry in files.items():
        file = path / rel
        try:
            if file.stat().st_size != entry["size"]:
                return False
        except (OSError, KeyError, TypeError):
            return False
        if deep and entry.get("sha256") and _sha256(file) != entry["sha256"]:
            return False
    return True


class CheckpointManager:
    """Owns one checkpoint root: atomic commits, the ``latest`` pointer, retention, crash cleanup.

    Only one process should commit into a root at a time (the driver); learner ranks may write
    files into the directory returned by :meth:`stage` before the driver commits it.

    Args:
        root: Directory holding ``step_*`` checkpoints. Created if missing.
        keep_last: How many complete checkpoints to keep (the one ``latest`` names is never
            deleted). ``None`` or 0 keeps all.
        cleanup: Remove temp/trash directories left by writers that are no longer alive.
    """

    def __init__(self, root: str | os.PathLike, keep_last: int | None = None, *, cleanup: bool = True):
        if keep_last is not None and keep_last < 0:
            raise ValueError(f"keep_last must be >= 0 or None, got {keep_last}")
        self.root = Path(root)
        self.keep_last = keep_last or None
        self.root.mkdir(parents=True, exist_ok=True)
        self._staged_at: dict[Path, float] = {}  # when each staged directory was created (progress line)
        if cleanup:
            self.cleanup_stale()

    def stage(self, step: int) -> Path:
        """Create and return an empty temp directory to write the checkpoint for ``step`` into."""
        staged = self.root / f"{TMP_PREFIX}{step_dir_name(step)}-{os.getpid()}"
        if staged.exists():
            shutil.rmtree(staged)
        staged.mkdir(parents=True)
        self._staged_at[staged] = time.perf_counter()
        return staged

    def save(self, step: int, write: Callable[[Path], None], manifest: dict[str, Any] | None = None) -> Path:
        """Stage, let ``write(staged_dir)`` fill it, commit. A failure leaves no trace but the old checkpoints.

        On any error (a full disk while writing or committing, a learner that failed) the staged directory is
        removed and ``latest`` still names the previous complete checkpoint. A full disk becomes a
        CheckpointError saying so; other errors propagate unchanged.
        """
        staged = self.stage(step)
        try:
            write(staged)
            return self.commit(staged, step, manifest)
        except Exception as exc:
            shutil.rmtree(staged, ignore_errors=True)
            if _is_disk_full(exc):
                previous = self.latest()
                raise CheckpointError(
                    f"checkpoint for step {step} not written: no space left on the device of {self.root} "
                    f"({_free_mb(self.root):.0f} MB free); `latest` still names "
                    f"{previous.name if previous else 'no checkpoint'}. Free space, then `--resume auto`"
                ) from exc
            raise

    def commit(
        self,
        staged: str | os.PathLike,
        step: int,
        manifest: dict[str, Any] | None = None,
        *,
        sha256: bool = False,
    ) -> Path:
        """Publish a staged directory as the checkpoint for ``step`` and point ``latest`` at it.

        Args:
            staged: The directory returned by :meth:`stage`, fully written.
            step: Training step the checkpoint holds (the number of completed updates).
            manifest: JSON-serialisable metadata stored under ``"user"`` in ``MANIFEST.json``.
            sha256: Also record a sha256 per file (costs a full read; enables ``deep`` verify).

        Returns:
            The final ``step_*`` directory.
        """
        staged = Path(staged)
        if not staged.is_dir():
            raise CheckpointError(f"staged checkpoint {staged} does not exist")
        files: dict[str, dict[str, Any]] = {}
        for file in sorted(p for p in staged.rglob("*") if p.is_file()):
            rel = file.relative_to(staged).as_posix()
            if rel == MANIFEST_NAME:
                continue
            fsync_file(file)
            entry: dict[str, Any] = {"size": file.stat().st_size}
            if sha256:
                entry["sha256"] = _sha256(file)
            files[rel] = entry
        for sub in sorted((p for p in staged.rglob("*") if p.is_dir()), reverse=True):
            fsync_dir(sub)
        record = {
            "format": MANIFEST_FORMAT,
            "step": step,
            "time": time.time(),
            "files": files,
            "user": manifest or {},
        }
        atomic_write_text(staged / MANIFEST_NAME, json.dumps(record, indent=1, sort_keys=True) + "\n")

        final = self.root / step_dir_name(step)
        self._set_aside_future(step)
        if final.exists():
            # Re-committing a step (e.g. after resuming from an earlier checkpoint): move the old
            # one aside first so the rename below is a plain atomic rename.
            self._discard(final)
        os.rename(staged, final)
        fsync_dir(self.root)
        self._publish_pointer(final.name)
        self.apply_retention()
        started = self._staged_at.pop(staged, None)
        if started is not None:  # large models take a while: say what was written and how long it took
            total = sum(entry["size"] for entry in files.values())
            progress(f"checkpoint {final}: {size(total)} in {time.perf_counter() - started:.1f}s")
        return final

    def _publish_pointer(self, name: str) -> None:
        atomic_write_text(self.root / POINTER_NAME, name + "\n")

    def _set_aside_future(self, step: int) -> None:
        # Checkpoints newer than the one being committed belong to a timeline the user abandoned by
        # resuming from an earlier step. Left under step_* names they would win the fallback scan
        # and crowd out retention, so they are renamed (kept, not deleted) out of the way.
        for other, path in self.step_dirs():
            if other <= step:
                continue
            dest = self.root / f"{SUPERSEDED_PREFIX}{path.name}"
            n = 1
            while dest.exists():
                n += 1
                dest = self.root / f"{SUPERSEDED_PREFIX}{path.name}.{n}"
            os.rename(path, dest)
            warnings.warn(
                f"checkpoint {path.name} is newer than step {step} being committed; moved to {dest.name}",
                stacklevel=3,
            )
        fsync_dir(self.root)

    def _discard(self, path: Path) -> None:
        # Rename first so a crash mid-delete never leaves a half-deleted dir under a step_* name.
        trash = self.root / f"{TRASH_PREFIX}{path.name}-{os.getpid()}"
        if trash.exists():
            shutil.rmtree(trash)
        os.rename(path, trash)
        fsync_dir(self.root)
        shutil.rmtree(trash, ignore_errors=True)

    def step_dirs(self) -> list[tuple[int, Path]]:
        """All ``step_*`` directories (complete or not), ascending by step."""
        found = []
        for child in self.root.iterdir():
            step = parse_step(child.name)
            if step is not None and child.is_dir():
                found.append((step, child))
        return sorted(found)

    def complete_checkpoints(self) -> list[tuple[int, Path]]:
        """Complete checkpoints, ascending by step."""
        return [(s, p) for s, p in self.step_dirs() if verify_checkpoint(p)]

    def pointer_target(self) -> Path | None:
        """The directory ``latest`` names if it is a well-formed step name, else None."""
        try:
            name = (self.root / POINTER_NAME).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            return None
        if parse_step(name) is None:
            return None
        return self.root / name

    def latest(self) -> Path | None:
        """The newest complete checkpoint, or None if there is none.

        The pointer wins when it names a complete checkpoint; otherwise (missing, garbage, or
        stale pointer) the highest complete ``step_*`` directory is returned.
        """
        target = self.pointer_target()
        if target is not None and verify_checkpoint(target):
            return target
        complete = self.complete_checkpoints()
        return complete[-1][1] if complete else None

    def resolve(self, resume: str | os.PathLike | None) -> Path | None:
        """Turn a recipe's ``resume`` setting into a checkpoint directory.

        Args:
            resume: ``"auto"`` (latest complete checkpoint under this root, or None to start
                fresh), ``None``/``"none"``/``""`` (start fresh), a ``step_*`` directory, or another
                checkpoint root (its latest complete checkpoint).

        Returns:
            A verified checkpoint directory, or None when starting fresh.

        Raises:
            CheckpointError: An explicit path is missing, incomplete, or a root with no complete
                checkpoint. Explicit requests never silently fall back to a fresh start.
        """
        if resume is None or str(resume).lower() in ("", "none", "never"):
            return None
        if str(resume) == "auto":
            return self.latest()
        path = Path(resume).expanduser()
        if not path.exists():
            raise CheckpointError(f"resume checkpoint {path} does not exist")
        if (path / MANIFEST_NAME).exists() or parse_step(path.name) is not None:
            if not verify_checkpoint(path):
                raise CheckpointError(
                    f"resume checkpoint {path} is incomplete (missing or mismatched {MANIFEST_NAME})"
                )
            return path
        found = CheckpointManager(path, cleanup=False).latest()
        if found is None:
            raise CheckpointError(f"no complete checkpoint under {path}")
        return found

    def apply_retention(self) -> list[Path]:
        """Delete the oldest complete checkpoints beyond ``keep_last``; never the one ``latest`` names.

        Returns:
            The deleted directories.
        """
        if not self.keep_last:
            return []
        protected = self.pointer_target()
        complete = [p for _, p in self.complete_checkpoints()]
        doomed = [p for p in complete[: max(0, len(complete) - self.keep_last)] if p != protected]
        for path in doomed:
            self._discard(path)
        return doomed

    def cleanup_stale(self) -> list[Path]:
        """Remove temp/trash directories whose writer process is gone.

        Returns:
            The removed paths.
        """
        removed = []
        for child in self.root.iterdir():
            match = _SCRATCH_RE.match(child.name)
            if match is None or _pid_alive(int(match.group(1))):
                continue
            if child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    child.unlink()
            removed.append(child)
        # Pointer temp files from atomic_write_text (".latest.tmp-<pid>") are tiny; same rule.
        for child in self.root.glob(f".{POINTER_NAME}.tmp-*"):
            pid = child.name.rsplit("-", 1)[-1]
            if pid.isdigit() and not _pid_alive(int(pid)):
                with contextlib.suppress(OSError):
                    child.unlink()
                removed.append(child)
        return removed
