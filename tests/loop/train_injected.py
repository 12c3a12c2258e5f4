"""`rlvr train` with faults passed in as objects; the integration tests run it as a subprocess.

Usage: ``python train_injected.py RECIPE [--perturb-worker RANK --perturb-from-push N] [--pause-checkpoint-at S]``

* ``--perturb-worker``: a ``PerturbingTransport`` pushes the learner's weights as usual, then (from the N-th
  push on; the start-up sync is push 1) a noisy copy of one decoder matrix into that rollout worker only,
  through the workers' ordinary weight-update call. With the sync probe on, the run must stop; with it off,
  the rollout engine samples from a different model than the learner scores.
* ``--pause-checkpoint-at``: a ``PausingCheckpoints`` manager writes the checkpoint of step S, drops a
  ``PAUSED-S`` file next to the staged directory and sleeps before the commit, so the test can SIGKILL the
  run mid-checkpoint.

Errors are reported as ``rlvr train`` reports them: rlvr's own errors as one line and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import ray

from rlvr.checkpoint.manager import CheckpointManager
from rlvr.orchestrate.rollout_worker import corrupt_one_tensor, layer_of
from rlvr.orchestrate.weight_sync import ObjectStoreTransport


class PerturbingTransport(ObjectStoreTransport):
    """The object-store push, then noise in one tensor of worker ``rank`` from push ``from_push`` on."""

    def __init__(self, rank: int, from_push: int) -> None:
        super().__init__()
        self.rank, self.from_push, self.pushes = rank, from_push, 0

    def deliver(self, group: Any, ref: Any, *, full: bool = True):
        per_worker = super().deliver(group, ref, full=full)
        self.pushes += 1
        if self.pushes >= self.from_push:
            noisy, name = corrupt_one_tensor(list(ray.get(ref)))
            layer = [t for t in noisy if layer_of(t[0]) == layer_of(name)]  # fused q/k/v must reload together
            ray.get(group.workers[self.rank].update_weights.remote(layer))
        return per_worker


class PausingCheckpoints(CheckpointManager):
    """Stalls the checkpoint of step ``pause_at`` after its files are written, before the commit."""

    def __init__(self, root: Path, keep_last: int | None, pause_at: int) -> None:
        super().__init__(root, keep_last=keep_last)
        self.pause_at = pause_at

    def save(self, step, write, manifest=None):
        def stalled(staged: Path) -> None:
            write(staged)
            if step == self.pause_at:
                (staged.parent / f"PAUSED-{step}").write_text(str(staged))
                time.sleep(600)

        return super().save(step, stalled, manifest)


def main() -> int:
    from rlvr.cli import is_user_error
    from rlvr.config import load_recipe
    from rlvr.loop import train
    from rlvr.reaper import start_reaper
    from rlvr.runlog import setup_driver_logging

    parser = argparse.ArgumentParser()
    parser.add_argument("recipe")
    parser.add_argument("--perturb-worker", type=int)
    parser.add_argument("--perturb-from-push", type=int, default=1)
    parser.add_argument("--pause-checkpoint-at", type=int)
    args = parser.parse_args()
    recipe, _ = load_recipe(args.recipe, [])
    setup_driver_logging(Path(recipe.run_dir), recipe.logging.log_level)
    start_reaper()
    transport = checkpoints = None
    if args.perturb_worker is not None:
        transport = PerturbingTransport(args.perturb_worker, args.perturb_from_push)
    if args.pause_checkpoint_at is not None:
        root = recipe.checkpoint.dir or Path(recipe.run_dir) / "checkpoints"
        checkpoints = PausingCheckpoints(Path(root), recipe.checkpoint.keep_last, args.pause_checkpoint_at)
    try:
        train(
            recipe,
            recipe_dir=str(Path(args.recipe).resolve().parent),
            transport=transport,
            checkpoints=checkpoints,
        )
    except Exception as exc:
        if not is_user_error(exc):
            raise
        print(f"error:\n  - {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
