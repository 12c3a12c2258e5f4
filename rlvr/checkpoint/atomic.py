"""Crash-safe file primitives: durable writes, atomic replace, directory fsync.

A reader must only ever see the old bytes or the new bytes of a file, never a prefix. Every
writer in rlvr that publishes a file other processes read after a crash (checkpoint pointer,
manifest, eval report) goes through these helpers.
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(path: str | os.PathLike) -> None:
    """Flush a directory's entries (renames, creations) to stable storage.

    Without this a rename can be lost on power failure even though the file data was synced.
    Filesystems that cannot fsync a directory (some network mounts) are tolerated.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_file(path: str | os.PathLike) -> None:
    """Flush a file written by someone else (e.g. ``torch.save``) to stable storage."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` so readers see either the old file or the complete new one.

    Writes a sibling temp file, fsyncs it, ``os.replace``s it over ``path`` and fsyncs the
    directory. The temp name carries the pid so concurrent writers never share a temp file.

    Args:
        path: Destination file.
        data: Full new contents.

    Returns:
        The destination path.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    fsync_dir(path.parent)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """UTF-8 text variant of :func:`atomic_write_bytes`."""
    return atomic_write_bytes(path, text.encode("utf-8"))
