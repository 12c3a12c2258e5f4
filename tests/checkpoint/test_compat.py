"""resume_incompatibilities: breaking vs harmless recipe changes."""

from __future__ import annotations

import copy

import pytest

from rlvr.checkpoint import RESUME_RULES, classify_recipe_changes, resume_incompatibilities
from rlvr.checkpoint.compat import BREAKING, HARMLESS, classify_key

RECIPE = {
    "seed": 1,
    "model": {"path": "tiny", "dtype": "float32"},
    "data": {"train": "synthetic", "eval": {"path": "heldout", "num_prompts": 64}, "eval_every": 5},
    "rollout": {
        "samples_per_prompt": 8,
        "max_prompt_tokens": 128,
        "max_response_tokens": 128,
        "temperature": 1.0,
        "num_workers": 1,
    },
    "train": {"steps": 100, "prompts_per_step": 4},
    "learner": {"lr": 1e-6, "micro_batch_tokens": 1024, "zero_stage": 2, "gradient_checkpointing": False},
    "algorithm": {"estimator": "grpo", "loss": "ppo_clip", "clip": {"low": 0.2, "high": 0.28}},
    "logging": {"every_steps": 1, "tensorboard": True},
    "eval": {"every_steps": 10, "k": [1, 4]},
    "checkpoint": {"every_steps": 10, "keep_last": 3, "resume": "auto"},
}


def changed(path: str, value):
    recipe = copy.deepcopy(RECIPE)
    *parents, leaf = path.split(".")
    node = recipe
    for key in parents:
        node = node[key]
    node[leaf] = value
    return recipe


def test_identical_recipes_are_compatible():
    assert resume_incompatibilities(RECIPE, copy.deepcopy(RECIPE)) == []


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("seed", 2),
        ("model.path", "other"),
        ("model.dtype", "bfloat16"),
        ("data.train", "gsm8k"),
        ("rollout.samples_per_prompt", 4),
        ("rollout.max_prompt_tokens", 256),
        ("rollout.max_response_tokens", 64),
        ("train.prompts_per_step", 8),
        ("learner.lr", 2e-6),
        ("learner.zero_stage", 3),
        ("algorithm.estimator", "rloo"),
        ("algorithm.clip.high", 0.2),
    ],
)
def test_breaking_changes_are_reported(path, value):
    problems = resume_incompatibilities(RECIPE, changed(path, value))
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}: ")
    assert repr(value) in problems[0]


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("train.steps", 200),
        ("logging.every_steps", 5),
        ("logging.tensorboard", False),
        ("eval.every_steps", 3),
        ("eval.k", [1, 2, 4, 8]),
        ("checkpoint.every_steps", 5),
        ("checkpoint.keep_last", 1),
        ("checkpoint.resume", "/some/path"),
        ("data.eval.path", "math500"),
        ("data.eval_every", 2),
        ("learner.micro_batch_tokens", 512),
        ("learner.gradient_checkpointing", True),
    ],
)
def test_harmless_changes_pass(path, value):
    new = changed(path, value)
    assert resume_incompatibilities(RECIPE, new) == []
    assert classify_recipe_changes(RECIPE, new)[HARMLESS][0].startswith(f"{path}: ")


def test_unlisted_keys_are_unclassified_not_blocking():
    changes = classify_recipe_changes(RECIPE, changed("rollout.temperature", 0.7))
    assert changes[BREAKING] == []
    assert changes["unclassified"] == ["rollout.temperature: 1.0 -> 0.7"]


def test_added_and_removed_keys_count_as_changes():
    new = copy.deepcopy(RECIPE)
    new["algorithm"]["kl_coef"] = 0.1
    del new["learner"]["zero_stage"]
    problems = resume_incompatibilities(RECIPE, new)
    assert problems == [
        "algorithm.kl_coef: '<absent>' -> 0.1 (changes the objective the optimizer state was built for)",
        "learner.zero_stage: 2 -> '<absent>' (optimizer/schedule state would not match)",
    ]


def test_several_changes_all_reported_sorted():
    new = changed("seed", 9)
    new["model"]["path"] = "x"
    new["train"]["steps"] = 5
    assert [p.split(":")[0] for p in resume_incompatibilities(RECIPE, new)] == ["model.path", "seed"]


def test_rules_are_data_with_reasons():
    assert all(rule.reason and rule.verdict in (BREAKING, HARMLESS) for rule in RESUME_RULES)
    assert classify_key("data.eval.path").verdict == HARMLESS
    assert classify_key("data.train").verdict == BREAKING
    assert classify_key("rollout.num_workers") is None
