"""Step metrics under dynamic sampling, on fake rollouts and rewards (no Ray, vLLM or DeepSpeed).

The main figures describe what the policy generated over every round, before the group filter; the reward
pool's metrics cover every round; each top-up round samples with seeds of its own.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from rlvr import loop
from rlvr.config import Recipe
from rlvr.run import Run
from rlvr.sampler import PromptSampler, rollout_seed
from rlvr.stages import AlgorithmStages
from rlvr.step_metrics import pool_metrics

PROMPTS, N = 6, 2


class FakeRollout:
    """Row r (its prompt is ``[r]``): all right when r % 3 == 0, all wrong when 1, one of each when 2."""

    def __init__(self):
        self.seeds: list[tuple[int, int]] = []  # (first, last + 1) sample seed of each generate call

    def generate(self, prompts, *, n, seed, **_):
        self.seeds.append((seed, seed + len(prompts) * n))
        out = []
        for (row,) in prompts:
            kind = row % 3
            texts = ["right"] * n if kind == 0 else ["wrong"] * n if kind == 1 else ["right", "wrong"]
            out.append([SimpleNamespace(token_ids=[1] * (3 + j), logprobs=[0.0] * (3 + j), text=t, truncated=False)
                        for j, t in enumerate(texts)])  # fmt: skip
        return out


class FakeScorer:
    """Correct iff the text is "right"; reports one reward error per call (a count to be summed)."""

    def score(self, texts, rows, lengths):
        results = [
            SimpleNamespace(score=float(t == "right"), correct=t == "right", extracted=t) for t in texts
        ]
        acc = sum(r.correct for r in results) / len(results)
        return results, {"reward/mean": acc, "reward/accuracy": acc, "reward/errors": 1.0}


def fake_run(dynamic_sampling: bool) -> Run:
    recipe = Recipe.model_validate(
        {
            "train": {"prompts_per_step": PROMPTS},
            "rollout": {"samples_per_prompt": N},
            "learner": {"updates_per_step": 1},
            "algorithm": {
                "dynamic_sampling": {
                    "enabled": dynamic_sampling,
                    "mode": "drop_uniform",
                    "max_gen_batches": 10,
                }
            },
        }
    )
    run = Run(recipe)
    run.train_rows = [{"id": r} for r in range(60)]
    run.train_prompt_ids = [[r] for r in range(60)]
    run.rollout = FakeRollout()
    run.scorer = FakeScorer()
    run.sampler = PromptSampler(60, PROMPTS, seed=0, shuffle=False)
    run.learners = SimpleNamespace(world_size=1)
    run.algorithm = AlgorithmStages(recipe)
    run.overlong = run.algorithm.overlong
    run.group_filter = run.algorithm.group_filter
    run.step = 3
    return run


def one_step(run: Run) -> dict:
    run.reward_rounds = []
    samples = loop.generate(run)
    loop.reward(run, samples)
    generated, trained = loop.filter_groups(run, samples)
    return loop.step_metrics(run, generated, trained, {}, {}, {}, 1.0)


def test_main_figures_are_what_the_policy_generated_before_the_filter():
    run = fake_run(dynamic_sampling=True)
    m = one_step(run)
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


def test_without_a_filter_the_figures_are_the_step_samples():
    m = one_step(fake_run(dynamic_sampling=False))
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


def test_rounds_of_one_step_never_share_sampling_seeds():
    run = fake_run(dynamic_sampling=True)
    one_step(run)
    spans = run.rollout.seeds
    assert len(spans) == 3
    for i, (a0, a1) in enumerate(spans):
        for b0, b1 in spans[i + 1 :]:
            assert a1 <= b0 or b1 <= a0, f"rounds share seeds: {spans}"
    # Deterministic in (run seed, step, round): a fresh run (as after a resume) draws the same streams.
    again = fake_run(dynamic_sampling=True)
    one_step(again)
    assert again.rollout.seeds == spans
    assert spans[0][0] == rollout_seed(run.recipe.seed, 3, 0)
