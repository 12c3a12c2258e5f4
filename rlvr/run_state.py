"""Save and restore a whole run: learner ranks (DeepSpeed: model, optimizer, LR schedule), trainer state
(step, data cursor, RNG streams of driver and learners), the resolved recipe, and an HF export of the policy.

Written into a staged temp directory and committed atomically by `CheckpointManager` (rename, then the
`latest` pointer last), so `--resume auto` never sees a partial checkpoint.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from rlvr.checkpoint.state import capture_rng_state, load_trainer_state, restore_rng_state, save_trainer_state

if TYPE_CHECKING:
    from rlvr.run import Run


def save_run_checkpoint(run: Run) -> Path:
    """Write and commit the checkpoint of ``run.step``; a failure (e.g. a full disk) leaves ``latest`` as it was."""

    def write(staged: Path) -> None:
        run.learners.save(str(staged / "learner"))
        if run.recipe.checkpoint.export_hf:
            run.learners.export_hf(str(staged / "hf"))
        save_trainer_state(
            staged,
            {
                "step": run.step,
                "sampler": run.sampler.state_dict(),
                "driver_rng": capture_rng_state(),
                "learner_rng": run.learners.rng_states(),
                "pending_samples": run.pending_state(),
            },
        )
        (staged / "recipe.yaml").write_text(
            yaml.safe_dump(run.recipe.model_dump(mode="json"), sort_keys=False)
        )
        _crash_test_pause(run.step, staged)

    return run.ckpt.save(run.step, write, manifest={"name": run.recipe.name, "step": run.step})


def load_run_checkpoint(run: Run, path: Path) -> None:
    state = load_trainer_state(path)
    run.learners.load(str(path / "learner"))
    run.step = int(state["step"])
    run.sampler.load_state_dict(state["sampler"])
    restore_rng_state(state["driver_rng"])
    run.learners.set_rng_states(state["learner_rng"])
    run.restore_pending(state.get("pending_samples"))


def _crash_test_pause(step: int, staged: Path) -> None:
    """Fault injection: RLVR_TEST_CHECKPOINT_PAUSE=step:seconds stalls mid-write so a test can SIGKILL the run."""
    hook = os.environ.get("RLVR_TEST_CHECKPOINT_PAUSE", "")
    if hook and int(hook.split(":")[0]) == step:
        (staged.parent / f"PAUSED-{step}").write_text(str(staged))
        time.sleep(float(hook.split(":")[1]))
