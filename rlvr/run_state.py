"""Save and restore a whole run: learner ranks (DeepSpeed: model, optimizer, LR schedule), trainer state
(step, data cursor, RNG streams of driver and learners), the resolved recipe, and an HF export of the policy.

Written into a staged temp directory and committed atomically by `CheckpointManager` (rename, then the
`latest` pointer last), so `--resume auto` never sees a partial checkpoint. The functions take the parts they
save as explicit arguments (no run object), so they depend on nothing of the driver above them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from rlvr.checkpoint.state import capture_rng_state, load_trainer_state, restore_rng_state, save_trainer_state


def save_run_checkpoint(
    ckpt: Any,
    *,
    step: int,
    recipe: Any,
    learners: Any,
    sampler: Any,
    pending_samples: Callable[[], dict[str, Any] | None],
) -> Path:
    """Write and commit the checkpoint of ``step``; a failure (e.g. a full disk) leaves ``latest`` as it was.

    Args:
        ckpt: The run's ``CheckpointManager``.
        step: Steps completed.
        recipe: The resolved recipe (saved as ``recipe.yaml``, checked on resume).
        learners: The ``LearnerGroup`` (DeepSpeed state, HF export, RNG streams).
        sampler: The ``PromptSampler`` (data cursor).
        pending_samples: Returns the one-step-off batch in flight as plain data (None in sync mode); called
            while writing, after the driver RNG is captured.
    """

    def write(staged: Path) -> None:
        learners.save(str(staged / "learner"))
        if recipe.checkpoint.export_hf:
            learners.export_hf(str(staged / "hf"))
        save_trainer_state(
            staged,
            {
                "step": step,
                "sampler": sampler.state_dict(),
                "driver_rng": capture_rng_state(),
                "learner_rng": learners.rng_states(),
                "pending_samples": pending_samples(),
            },
        )
        (staged / "recipe.yaml").write_text(yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False))

    return ckpt.save(step, write, manifest={"name": recipe.name, "step": step})


def load_run_checkpoint(path: Path, *, learners: Any, sampler: Any) -> tuple[int, dict[str, Any] | None]:
    """Restore learners, data cursor and RNG streams from ``path``; return the step and the pending batch."""
    state = load_trainer_state(path)
    learners.load(str(path / "learner"))
    sampler.load_state_dict(state["sampler"])
    restore_rng_state(state["driver_rng"])
    learners.set_rng_states(state["learner_rng"])
    return int(state["step"]), state.get("pending_samples")
