"""The training–inference mismatch metrics, checked against values worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from rlvr.algo.mismatch import logprob_mismatch


def test_hand_computed_values():
    rollout = torch.tensor([[-1.0, -2.0, -9.0], [-0.5, 0.0, 0.0]])
    learner = torch.tensor([[-1.5, -2.0, 5.0], [-0.25, 0.0, 0.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])  # the padded positions (|Δ| = 14) must not count
    out = logprob_mismatch(rollout, learner, mask)
    # |Δ| over the three tokens: 0.5, 0, 0.25
    assert out["mismatch/logprob_abs_mean"] == pytest.approx(0.75 / 3)
    assert out["mismatch/logprob_abs_max"] == pytest.approx(0.5)
    # k3 with d = learner - rollout: d = -0.5, 0, 0.25
    k3 = [math.exp(d) - d - 1 for d in (-0.5, 0.0, 0.25)]
    assert out["mismatch/kl_k3"] == pytest.approx(sum(k3) / 3)


def test_identical_logprobs_and_empty_batches_give_zero():
    lp = torch.tensor([[-0.3, -1.2]])
    same = logprob_mismatch(lp, lp.clone(), torch.ones_like(lp))
    assert set(same.values()) == {0.0}
    empty = logprob_mismatch(torch.zeros(0, 1), torch.zeros(0, 1), torch.zeros(0, 1))
    assert set(empty.values()) == {0.0}


def test_step_samples_of_different_lengths_are_compared_token_by_token():
    from rlvr.batch import StepSamples
    from rlvr.step_metrics import mismatch_metrics

    samples = StepSamples(
        [0, 0], [{}, {}], [[1], [1]], [[5, 6], [7]], [[-1.0, -2.0], [-3.0]], ["", ""], [0, 0]
    )
    assert mismatch_metrics(samples) == {}  # before the learners scored the batch
    samples.old_logprobs = [[-1.0, -2.5], [-2.0]]
    out = mismatch_metrics(samples)
    assert out["mismatch/logprob_abs_mean"] == pytest.approx(1.5 / 3)
    assert out["mismatch/logprob_abs_max"] == pytest.approx(1.0)
