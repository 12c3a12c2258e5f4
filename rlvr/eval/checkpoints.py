"""Which model a checkpoint path names: a training checkpoint (its ``hf/`` export), a checkpoint root (its
latest complete checkpoint), a run directory, or a plain Hugging Face model directory; and the recipe it was
trained with, when it carries one. Used by `rlvr eval` and `rlvr export`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rlvr.checkpoint.manager import (
    MANIFEST_NAME,
    POINTER_NAME,
    CheckpointManager,
    parse_step,
    read_manifest,
    verify_checkpoint,
)

HF_SUBDIR = "hf"
RECIPE_FILE = "recipe.yaml"
CHECKPOINTS_SUBDIR = "checkpoints"


class CheckpointPathError(RuntimeError):
    """CHECKPOINT names nothing evaluable: not a checkpoint, checkpoint root, run dir or HF model."""


# ---- CHECKPOINT resolution ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResolvedCheckpoint:
    """What a CHECKPOINT argument points at.

    Attributes:
        path: The evaluated directory: a ``step_*`` checkpoint or a plain HF model directory.
        hf_dir: The HF model directory to load (``path/hf`` for a training checkpoint).
        recipe_file: The recipe saved with the checkpoint, or None (plain HF model).
        step: Training step of the checkpoint, or None (plain HF model).
    """

    path: Path
    hf_dir: Path
    recipe_file: Path | None
    step: int | None


def resolve_checkpoint(spec: str | os.PathLike) -> ResolvedCheckpoint:
    """Turn a CHECKPOINT argument into the model directory to load (rules in the module docstring).

    Raises:
        CheckpointPathError: The path is missing, an incomplete checkpoint, a checkpoint without an
            HF export, a root/run with no complete checkpoint, or none of the accepted kinds.
    """
    path = Path(spec).expanduser()
    if not path.is_dir():
        raise CheckpointPathError(f"{path} does not exist or is not a directory")
    if (path / MANIFEST_NAME).exists() or parse_step(path.name) is not None:
        return _training_checkpoint(path)
    if (path / "config.json").is_file():
        return ResolvedCheckpoint(path, path, None, None)
    if (path / CHECKPOINTS_SUBDIR).is_dir() or (path / RECIPE_FILE).is_file():
        return _latest_under(_run_checkpoint_root(path), f"run directory {path}")
    if (path / POINTER_NAME).exists() or any(parse_step(c.name) is not None for c in path.iterdir()):
        return _latest_under(path, f"checkpoint root {path}")
    raise CheckpointPathError(
        f"{path} is not a checkpoint (step_*/ with {MANIFEST_NAME}), a checkpoint root, a run directory "
        "(with checkpoints/) or a Hugging Face model directory (with config.json)"
    )


def _training_checkpoint(path: Path) -> ResolvedCheckpoint:
    if not verify_checkpoint(path):
        raise CheckpointPathError(f"checkpoint {path} is incomplete (missing or mismatched {MANIFEST_NAME})")
    hf_dir = path / HF_SUBDIR
    if not (hf_dir / "config.json").is_file():
        raise CheckpointPathError(
            f"checkpoint {path} has no Hugging Face export in {HF_SUBDIR}/ (was checkpoint.export_hf off?)"
        )
    manifest = read_manifest(path) or {}
    step = manifest.get("step", parse_step(path.name))
    recipe = path / RECIPE_FILE
    return ResolvedCheckpoint(path, hf_dir, recipe if recipe.is_file() else None, step)


def _run_checkpoint_root(run_dir: Path) -> Path:
    """``run_dir/checkpoints``, unless the run's recipe put its checkpoints elsewhere (``checkpoint.dir``)."""
    recipe = run_dir / RECIPE_FILE
    if recipe.is_file():
        try:
            custom = (yaml.safe_load(recipe.read_text()) or {}).get("checkpoint", {}).get("dir")
        except (yaml.YAMLError, AttributeError):
            custom = None
        if custom and Path(custom).expanduser().is_dir():
            return Path(custom).expanduser()
    return run_dir / CHECKPOINTS_SUBDIR


def _latest_under(root: Path, what: str) -> ResolvedCheckpoint:
    if not root.is_dir():
        raise CheckpointPathError(f"{what}: no checkpoint directory {root}")
    latest = CheckpointManager(root, cleanup=False).latest()
    if latest is None:
        raise CheckpointPathError(f"{what}: no complete checkpoint under {root}")
    return _training_checkpoint(latest)


def load_checkpoint_recipe(ckpt: ResolvedCheckpoint) -> Any:
    """The validated ``Recipe`` saved with the checkpoint, or None for a plain HF model."""
    if ckpt.recipe_file is None:
        return None
    from rlvr.config import validate_dict

    recipe, _warnings = validate_dict(
        yaml.safe_load(ckpt.recipe_file.read_text()) or {}, str(ckpt.recipe_file)
    )
    return recipe
