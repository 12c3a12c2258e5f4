"""The training–inference mismatch metric on the real stack: small when the rollout engine holds the learner's
weights, large once the test pushes a perturbed tensor into the engine (sync probe off, so the run goes on)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_train_integration import write_recipe

pytestmark = pytest.mark.integration


def test_mismatch_grows_when_the_rollout_weights_are_perturbed(tmp_path, random_model):
    recipe = write_recipe(
        tmp_path,
        random_model,
        train={"steps": 2, "prompts_per_step": 4},
        rollout={"sync": {"verify": False}},
        eval={"every_steps": 0},
        logging={"tensorboard": False},
    )
    # Push 1 is the start-up sync (step 1 samples from the learner's weights); from push 2 on (after step 1's
    # update) rollout worker 0 gets noise in one decoder matrix.
    out = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("train_injected.py")), str(recipe), "--perturb-worker", "0",
         "--perturb-from-push", "2"],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=recipe.parent,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-4000:]
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    first, second = (json.loads(line) for line in lines)
    assert first["mismatch/logprob_abs_max"] < 1e-3, first  # same weights: kernel-level differences only
    assert first["mismatch/kl_k3"] < 1e-6, first
    assert second["mismatch/kl_k3"] > 100 * max(first["mismatch/kl_k3"], 1e-9), (first, second)
    assert second["mismatch/logprob_abs_mean"] > 10 * first["mismatch/logprob_abs_mean"], (first, second)
