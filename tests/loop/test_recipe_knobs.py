"""Recipe knobs that change construction or the advantage, end to end on the real stack (Ray, vLLM, DeepSpeed).

`algorithm.kl_to_ref.as: reward` must fold -coef * KL(policy || reference) into the rewards: zero at step 1 (the
policy is the reference), non-zero after an update, and no KL term in the loss. The same run sets `model.dtype`,
`rollout.sync.timeout_s` and `resources.gpus_per_rollout_worker` explicitly, which the learner, the sync and the
rollout actors read.
"""

from __future__ import annotations

import math

import pytest
import yaml
from test_train_integration import read_metrics, rlvr_train, write_recipe

pytestmark = pytest.mark.integration


def test_kl_to_ref_as_reward_penalises_after_the_policy_moves(tmp_path, random_model):
    recipe = write_recipe(
        tmp_path,
        random_model,
        learner={
            "num_ranks": 1,
            "zero_stage": 0,
            "lr": 1e-3,
            "updates_per_step": 1,
            "micro_batch_tokens": 256,
        },
        algorithm={"kl_to_ref": {"coef": 0.5, "estimator": "k1", "as": "reward"}},
        rollout={
            "samples_per_prompt": 4,
            "max_prompt_tokens": 64,
            "max_response_tokens": 24,
            "sync": {"timeout_s": 120},
        },
        resources={"cpus_per_learner": 0.5, "gpus_per_rollout_worker": 0},
        eval={"every_steps": 0},
    )
    data = yaml.safe_load(recipe.read_text())
    data["model"]["dtype"] = "float32"
    recipe.write_text(yaml.safe_dump(data))
    out = rlvr_train(recipe)
    assert out.returncode == 0, out.stderr[-4000:]
    first, second = read_metrics(tmp_path / "run")
    assert abs(first["kl/reward_penalty_mean"]) < 1e-4  # policy == reference before any update
    assert math.isfinite(second["kl/reward_penalty_mean"]) and abs(second["kl/reward_penalty_mean"]) > 1e-6
    assert "learner/kl_ref" not in second  # the KL is a reward here, not a loss term
    assert second["sync/max_abs_logprob_delta"] < 1e-4
