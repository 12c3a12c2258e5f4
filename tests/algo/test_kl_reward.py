"""`algorithm.kl_to_ref.as: reward`: the per-token KL penalty and its effect on advantages, by hand."""

from __future__ import annotations

import math

import pytest
import torch

from rlvr.algo.api import compute_advantages
from rlvr.algo.kl import kl_reward_penalty
from rlvr.batch import StepSamples
from rlvr.config import Recipe
from rlvr.stages import AlgorithmStages

MASK = [[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]]
OLD = [[-1.0, -2.0, -0.5], [-0.3, -1.0, 0.0]]
REF = [[-1.5, -1.0, -0.5], [-0.3, -2.0, -9.0]]  # the last token of row 1 is padding: must not count
COEF = 0.1
# k1 = old - ref = [[0.5, -1, 0], [0, 1, (pad)]]; penalty = -coef * k1 * mask.
PENALTY = [[-0.05, 0.1, 0.0], [0.0, -0.1, 0.0]]
# Row sums 0.05 and -0.1: with rewards [1, 0] the penalised rewards are R' = [1.05, -0.1].


def t64(x) -> torch.Tensor:
    return torch.tensor(x, dtype=torch.float64)


def test_k1_penalty_by_hand():
    out = kl_reward_penalty(t64(OLD), t64(REF), t64(MASK), coef=COEF, estimator="k1")
    torch.testing.assert_close(out, t64(PENALTY))
    assert not out.requires_grad


def test_k3_penalty_by_hand():
    # k3 = exp(d) - d - 1 with d = ref - old: d = -0.5 -> exp(-0.5) - 0.5; d = 1 -> e - 2.
    out = kl_reward_penalty(t64(OLD), t64(REF), t64(MASK), coef=COEF, estimator="k3")
    k3 = [[math.exp(-0.5) - 0.5, math.e - 2.0, 0.0], [0.0, math.exp(-1.0), 0.0]]
    torch.testing.assert_close(out, -COEF * t64(k3))


@pytest.mark.parametrize(
    ("estimator", "expected"),
    [
        # dr_grpo: A = R' - mean(R') = [1.05, -0.1] - 0.475 (without the penalty it would be +-0.5).
        ("dr_grpo", [0.575, -0.575]),
        # rloo with G = 2: A_i = R'_i - R'_j.
        ("rloo", [1.15, -1.15]),
    ],
)
def test_penalty_changes_outcome_advantages_as_specified(estimator, expected):
    rewards, correct, groups = t64([1.0, 0.0]), torch.tensor([True, False]), torch.tensor([0, 0])
    tok = kl_reward_penalty(t64(OLD), t64(REF), t64(MASK), coef=COEF, estimator="k1")
    plain = compute_advantages(estimator, rewards, correct, groups, t64(MASK))
    penalised = compute_advantages(estimator, rewards, correct, groups, t64(MASK), token_rewards_BT=tok)
    torch.testing.assert_close(penalised, t64(expected).unsqueeze(-1) * t64(MASK))
    assert not torch.allclose(plain, penalised)


def _samples() -> StepSamples:
    lengths = [3, 2]
    return StepSamples(
        group_ids=[0, 0],
        rows=[{}, {}],
        prompt_ids=[[1], [1]],
        response_ids=[[5] * n for n in lengths],
        rollout_logprobs=[row[:n] for row, n in zip(OLD, lengths)],
        texts=["", ""],
        truncated=[False, False],
        rewards=[1.0, 0.0],
        correct=[True, False],
        old_logprobs=[row[:n] for row, n in zip(OLD, lengths)],
        ref_logprobs=[row[:n] for row, n in zip(REF, lengths)],
    )


def _stages(as_: str) -> AlgorithmStages:
    recipe = Recipe.model_validate(
        {
            "algorithm": {
                "estimator": {"name": "dr_grpo"},
                "kl_to_ref": {"coef": COEF, "estimator": "k1", "as": as_},
            }
        }
    )
    return AlgorithmStages(recipe)


def test_stages_fold_the_kl_reward_into_advantages():
    stages = _stages("reward")
    assert stages.needs_reference and stages.kl_in_reward and not stages.kl_in_loss
    adv = stages.advantages(_samples())
    assert [pytest.approx(row) for row in ([0.575] * 3, [-0.575] * 2)] == adv
    assert stages.metrics["kl/reward_penalty_mean"] == pytest.approx((0.05 - 0.1) / 2)


def test_stages_leave_advantages_alone_when_kl_is_a_loss():
    stages = _stages("loss")
    assert stages.kl_in_loss and not stages.kl_in_reward
    assert [pytest.approx(row) for row in ([0.5] * 3, [-0.5] * 2)] == stages.advantages(_samples())
