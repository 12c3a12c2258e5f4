"""Step metrics under dynamic sampling, on fake rollouts and rewards (no Ray, vLLM or DeepSpeed).

The main figures describe what the policy generated over every round, before the group filter; the reward
pool's metrics cover every round; each top-up round samples with seeds of its own.
"""

from __future__ import annotations

import contextlib

import pytest
from fakes import FakeBuild, recipe

from rlvr import loop
from rlvr.sampler import rollout_seed
from rlvr.step_metrics import pool_metrics


def fake_parts(tmp_path, dynamic_sampling: bool):
    build = FakeBuild()
    ds = {"enabled": dynamic_sampling, "mode": "drop_uniform", "max_gen_batches": 10}
    r = recipe(tmp_path, algorithm={"dynamic_sampling": ds})
    return build(r, contextlib.ExitStack())


STEP = 3


def one_step(parts) -> dict:
    rounds: list = []
    samples = loop.generate_batch(parts, parts.sampler.next_indices(), STEP)
    loop.reward(parts, samples, rounds)
    generated, trained = loop.filter_groups(parts, samples, STEP, rounds)
    metrics = loop.sample_metrics(generated, trained, rounds, 1.0)
    metrics.update(parts.stages.metrics)
    return metrics


def test_main_figures_are_what_the_policy_generated_before_the_filter(tmp_path):
    m = one_step(fake_parts(tmp_path, dynamic_sampling=True))
    # Three rounds of 6 prompts (2 mixed groups each) fill the 6 kept groups: 18 groups generated.
    assert m["filter/generation_rounds"] == 3
    assert m["filter/generated_groups"] == 18
    assert m["filter/kept_groups_frac"] == pytest.approx(6 / 18)
    assert m["accuracy/all_correct_groups"] == pytest.approx(1 / 3)  # 0 by construction after the filter
    assert m["accuracy/all_wrong_groups"] == pytest.approx(1 / 3)
    assert m["accuracy/mean"] == pytest.approx(0.5)
    assert m["filter/kept_accuracy_mean"] == pytest.approx(0.5)
    # The reward pool over every round: counts summed, means over all 36 samples.
    assert m["reward_pool/errors"] == 3.0
    assert m["reward_pool/scored_samples"] == 36.0
    assert m["reward_pool/accuracy"] == pytest.approx(0.5)


def test_without_a_filter_the_figures_are_the_step_samples(tmp_path):
    m = one_step(fake_parts(tmp_path, dynamic_sampling=False))
    assert not any(k.startswith("filter/") for k in m)
    assert m["accuracy/mean"] == pytest.approx(0.5)  # rows 0..5: 2 all-right, 2 all-wrong, 2 mixed
    assert m["accuracy/all_correct_groups"] == pytest.approx(1 / 3)
    assert m["reward_pool/errors"] == 1.0


def test_pool_metrics_weight_rounds_by_their_samples():
    rounds = [
        (
            10,
            {
                "reward/mean": 1.0,
                "reward/format_error_rate": 0.5,
                "reward/term/f": 1.0,
                "reward/filtered": 2.0,
            },
        ),
        (
            30,
            {
                "reward/mean": 0.0,
                "reward/format_error_rate": 0.1,
                "reward/term/f": 0.0,
                "reward/filtered": 1.0,
            },
        ),
    ]
    m = pool_metrics(rounds)
    assert m["reward_pool/mean"] == pytest.approx(0.25)
    assert m["reward_pool/format_error_rate"] == pytest.approx(0.2)
    assert m["reward_pool/term/f"] == pytest.approx(0.25)
    assert m["reward_pool/filtered"] == 3.0  # a count


def test_rounds_of_one_step_never_share_sampling_seeds(tmp_path):
    parts = fake_parts(tmp_path, dynamic_sampling=True)
    one_step(parts)
    spans = parts.rollout.seeds
    assert len(spans) == 3
    for i, (a0, a1) in enumerate(spans):
        for b0, b1 in spans[i + 1 :]:
            assert a1 <= b0 or b1 <= a0, f"rounds share seeds: {spans}"
    # Deterministic in (run seed, step, round): a fresh run (as after a resume) draws the same streams.
    again = fake_parts(tmp_path, dynamic_sampling=True)
    one_step(again)
    assert again.rollout.seeds == spans
    assert spans[0][0] == rollout_seed(parts.recipe.seed, STEP, 0)
