"""The on-policy shortcut on the real DeepSpeed learner: one synchronous update whose own forward pass gives the
old logprobs equals the update after a separate scoring pass.

Both paths run the loop's phases (`rlvr.loop.old_logprobs`, `advantages`, `update`) with one real `LearnerRank`
(tiny random model, float32, gloo). They are bitwise equal on CPU: the scoring pass and the update use the same
micro-batch plan (the same padded shapes), the model has no dropout, so eval and train mode compute the same
logprobs, and the ratio exp(logp - old) is exactly 1 in both. A shortcut that fed anything else as the old
logprobs would move the ratio and the weights.
"""

from __future__ import annotations

import types

import pytest
import torch

from rlvr import loop
from rlvr.batch import StepSamples
from rlvr.config import Recipe
from rlvr.learner.dist import free_port
from rlvr.learner.rank import LearnerRank
from rlvr.stages import AlgorithmStages
from rlvr.tiny.model import init_random_model

pytestmark = pytest.mark.integration

GROUPS, GROUP = 3, 4


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return init_random_model(tmp_path_factory.mktemp("on_policy_model"), seed=0)


class OneRank:
    """The learner group's interface over one in-process rank."""

    world_size = 1

    def __init__(self, rank: LearnerRank) -> None:
        self.rank = rank
        self.scored = 0

    def score(self, work, **kwargs):
        self.scored += 1
        return [self.rank.score(work[0], **kwargs)]

    def update(self, work, spec, step):
        return [self.rank.update(work[0], spec=spec, step=step)]


def samples(seed: int = 0) -> StepSamples:
    gen = torch.Generator().manual_seed(seed)

    def ids(lo, hi):
        return torch.randint(
            3, 60, (int(torch.randint(lo, hi, (1,), generator=gen)),), generator=gen
        ).tolist()

    s = StepSamples([], [], [], [], [], [], [])
    for q in range(GROUPS):
        prompt = ids(3, 8)
        for _ in range(GROUP):
            response = ids(1, 20)
            s.group_ids.append(q)
            s.rows.append({})
            s.prompt_ids.append(prompt)
            s.response_ids.append(response)
            s.rollout_logprobs.append([-1.0] * len(response))
            s.texts.append("")
            s.truncated.append(False)
    s.correct = [bool(i % 3 == 0) for i in range(len(s))]
    s.rewards = [float(c) for c in s.correct]
    return s


def run_step(model_dir, *, shortcut: bool, spec: dict) -> tuple[StepSamples, dict[str, torch.Tensor], int]:
    recipe = Recipe.model_validate(
        {
            "name": "on-policy",
            "model": {"path": str(model_dir)},
            "rollout": {"samples_per_prompt": GROUP, "max_response_tokens": 20},
            "train": {"prompts_per_step": GROUPS},
            "learner": {"lr": 1e-3, "zero_stage": 0, "micro_batch_tokens": 64},
            "algorithm": spec,
        }
    )
    stages = AlgorithmStages(recipe)
    assert stages.update_gives_old_logprobs
    stages.update_gives_old_logprobs = shortcut
    rank = LearnerRank(
        rank=0,
        world_size=1,
        master_addr="127.0.0.1",
        master_port=free_port(),
        model_path=str(model_dir),
        config=recipe.learner,
        seed=0,
        device="cpu",
        reference=stages.needs_reference,
    )
    learners = OneRank(rank)
    parts = types.SimpleNamespace(recipe=recipe, stages=stages, learners=learners)
    s = samples()
    exact = loop.on_policy(parts, s)
    loop.old_logprobs(parts, s, exact)
    loop.advantages(parts, s)
    metrics = loop.update(parts, s, 0, exact)
    assert metrics["time/learner_compute_s"] > 0  # the engine's time, beside the driver's whole update phase
    weights = {n: t.clone() for n, t in rank.named_weights()}
    return s, weights, learners.scored


@pytest.mark.parametrize(
    "spec",
    [
        {},  # GRPO, PPO clip, token mean
        {"kl_to_ref": {"coef": 0.1, "estimator": "k3"}},  # the scoring pass runs for the reference only
    ],
    ids=["grpo", "grpo+kl"],
)
def test_on_policy_update_equals_the_update_after_a_scoring_pass(model_dir, spec):
    scored_s, scored_w, scored_calls = run_step(model_dir, shortcut=False, spec=spec)
    fast_s, fast_w, fast_calls = run_step(model_dir, shortcut=True, spec=spec)
    assert scored_calls == 1
    assert fast_calls == (1 if spec.get("kl_to_ref") else 0)  # reference logprobs still need their forward

    assert scored_s.old_logprobs == fast_s.old_logprobs  # the update's forward gave the scored values
    assert sum(map(len, fast_s.old_logprobs)) == sum(scored_s.lengths)
    init = init_weights(model_dir)
    for name, w in scored_w.items():
        assert not torch.equal(w, init[name]), name  # the update moved every tensor
        assert torch.equal(fast_w[name], w), name


def init_weights(model_dir) -> dict[str, torch.Tensor]:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    return {n: t.detach().float() for n, t in model.state_dict().items()}
