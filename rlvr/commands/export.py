"""`rlvr export CHECKPOINT OUT`: copy a checkpoint's Hugging Face export out of the run, atomically.

CHECKPOINT is resolved like in ``rlvr eval`` (a ``step_*`` checkpoint, a checkpoint root, a run
directory or a plain HF model directory). The ``hf/`` folder is copied into a temp directory next
to OUT, checked (``AutoConfig`` loads it, every safetensors header is consistent with its file
size), and only then renamed to OUT, so OUT is either absent/unchanged or a complete, loadable
model: never half a copy.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
from pathlib import Path

from rlvr.checkpoint.atomic import fsync_dir, fsync_file
from rlvr.eval.checkpoints import resolve_checkpoint

SAFETENSORS_INDEX = "model.safetensors.index.json"
# A safetensors header is JSON of at most a few MB; anything larger means a corrupt length prefix.
MAX_HEADER_BYTES = 100 * 2**20


class ExportError(RuntimeError):
    """The export cannot be written or does not verify; the message says why."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``rlvr export``."""
    parser.add_argument(
        "checkpoint", help="step_* checkpoint, checkpoint root, run directory or HF model dir"
    )
    parser.add_argument("out", help="destination directory (created; must be empty or absent)")
    parser.add_argument("--force", action="store_true", help="replace a non-empty OUT")


def run(args: argparse.Namespace) -> int:
    """Entry point of ``rlvr export``."""
    ckpt = resolve_checkpoint(args.checkpoint)
    out = export_checkpoint(ckpt.hf_dir, args.out, force=args.force)
    files = [p for p in out.rglob("*") if p.is_file()]
    size_mb = sum(p.stat().st_size for p in files) / 2**20
    step = f" (step {ckpt.step})" if ckpt.step is not None else ""
    print(f"exported {ckpt.hf_dir}{step} -> {out} ({len(files)} files, {size_mb:.1f} MB)")
    return 0


def export_checkpoint(src: str | os.PathLike, out: str | os.PathLike, *, force: bool = False) -> Path:
    """Copy the HF model directory ``src`` to ``out`` via a verified temp copy and a rename.

    Args:
        src: HF model directory (``config.json`` + safetensors weights + tokenizer).
        out: Destination. Must be absent or an empty directory unless ``force``.
        force: Replace an existing non-empty ``out`` (the old one is removed only after the
            new one is in place).

    Returns:
        ``out`` as a Path.

    Raises:
        ExportError: ``out`` is a file or non-empty without ``force``, or the copy fails to verify
            (in which case ``out`` is left untouched).
    """
    src, out = Path(src), Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ExportError(f"{out} is not empty; pass --force to replace it")
    if out.resolve() == src.resolve() or src.resolve() in out.resolve().parents:
        raise ExportError(f"cannot export {src} into itself ({out})")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        shutil.copytree(src, tmp)
        verify_hf_dir(tmp)
        for file in tmp.rglob("*"):
            if file.is_file():
                fsync_file(file)
        fsync_dir(tmp)
        _swap_into_place(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def _swap_into_place(tmp: Path, out: Path) -> None:
    """Rename ``tmp`` to ``out``; an existing ``out`` is moved aside first and deleted after."""
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        if old.exists():
            shutil.rmtree(old)
        os.rename(out, old)
    try:
        os.rename(tmp, out)
    except OSError:
        if old is not None:
            os.rename(old, out)
        raise
    fsync_dir(out.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def verify_hf_dir(path: str | os.PathLike) -> list[Path]:
    """Check that ``path`` is a loadable HF model: config parses, weight files are whole.

    Args:
        path: The directory to check.

    Returns:
        The safetensors files checked.

    Raises:
        ExportError: No/invalid config, no safetensors weights, a shard named by the index is
            missing, or a safetensors file whose header does not match its size (truncated copy).
    """
    from transformers import AutoConfig

    path = Path(path)
    try:
        AutoConfig.from_pretrained(str(path))
    except Exception as exc:  # transformers raises OSError/ValueError/KeyError depending on the problem
        raise ExportError(f"{path}: config does not load with transformers.AutoConfig: {exc}") from exc
    files = sorted(path.glob("*.safetensors"))
    index = path / SAFETENSORS_INDEX
    if index.exists():
        try:
            shards = set(json.loads(index.read_text())["weight_map"].values())
        except (ValueError, KeyError, TypeError) as exc:
            raise ExportError(f"{index}: unreadable safetensors index: {exc}") from exc
        missing = sorted(s for s in shards if not (path / s).is_file())
        if missing:
            raise ExportError(f"{path}: shards named by {SAFETENSORS_INDEX} are missing: {missing}")
    if not files:
        raise ExportError(f"{path}: no *.safetensors weights")
    for file in files:
        check_safetensors_header(file)
    return files


def check_safetensors_header(file: str | os.PathLike) -> int:
    """Validate a safetensors file's header against its size without loading tensors.

    Layout: 8-byte little-endian header length N, N bytes of JSON mapping tensor names to
    ``{"dtype", "shape", "data_offsets": [begin, end]}``, then the data buffer. The largest
    ``end`` must equal the buffer size exactly (a truncated or padded copy fails).

    Returns:
        Number of tensors in the file.

    Raises:
        ExportError: Naming the file and the inconsistency.
    """
    file = Path(file)
    size = file.stat().st_size
    with open(file, "rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise ExportError(f"{file}: too short for a safetensors file ({size} bytes)")
        (n,) = struct.unpack("<Q", prefix)
        if n > min(MAX_HEADER_BYTES, size - 8):
            raise ExportError(f"{file}: header length {n} does not fit in a {size}-byte file")
        raw = f.read(n)
    try:
        header = json.loads(raw)
    except ValueError as exc:
        raise ExportError(f"{file}: header is not JSON: {exc}") from exc
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    data_size = size - 8 - n
    end = 0
    for name, info in tensors.items():
        try:
            begin, stop = info["data_offsets"]
        except (KeyError, TypeError, ValueError) as exc:
            raise ExportError(f"{file}: tensor {name!r} has no valid data_offsets") from exc
        if not 0 <= begin <= stop <= data_size:
            raise ExportError(
                f"{file}: tensor {name!r} spans bytes {begin}..{stop} of a {data_size}-byte buffer"
            )
        end = max(end, stop)
    if end != data_size:
        raise ExportError(f"{file}: tensors cover {end} bytes but the data buffer holds {data_size}")
    return len(tensors)
