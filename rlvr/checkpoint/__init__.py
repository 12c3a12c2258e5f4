"""Checkpoint machinery: atomic step directories, the ``latest`` pointer, trainer/RNG state, resume checks.

Importing this package does not import torch; the state helpers import it when called.
"""

from rlvr.checkpoint.atomic import atomic_write_bytes, atomic_write_text, fsync_dir
from rlvr.checkpoint.compat import (
    RESUME_RULES,
    ResumeRule,
    classify_recipe_changes,
    resume_incompatibilities,
)
from rlvr.checkpoint.manager import (
    MANIFEST_NAME,
    POINTER_NAME,
    CheckpointError,
    CheckpointManager,
    parse_step,
    read_manifest,
    step_dir_name,
    verify_checkpoint,
)
from rlvr.checkpoint.state import (
    capture_rng_state,
    load_trainer_state,
    restore_rng_state,
    save_trainer_state,
)

__all__ = [
    "MANIFEST_NAME",
    "POINTER_NAME",
    "RESUME_RULES",
    "CheckpointError",
    "CheckpointManager",
    "ResumeRule",
    "atomic_write_bytes",
    "atomic_write_text",
    "capture_rng_state",
    "classify_recipe_changes",
    "fsync_dir",
    "load_trainer_state",
    "parse_step",
    "read_manifest",
    "restore_rng_state",
    "resume_incompatibilities",
    "save_trainer_state",
    "step_dir_name",
    "verify_checkpoint",
]
