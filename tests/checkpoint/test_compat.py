"""Resume rules: breaking vs harmless vs unclassified recipe changes, on real resolved recipes."""

from __future__ import annotations

import copy
import logging
import types
import typing
from fnmatch import fnmatchcase

import pytest
import yaml
from pydantic import BaseModel

from rlvr.checkpoint import RESUME_RULES, classify_recipe_changes, resume_incompatibilities
from rlvr.checkpoint.compat import BREAKING, HARMLESS, UNCLASSIFIED, classify_key, unclassified_warning
from rlvr.config import Recipe

RECIPE = Recipe.model_validate(
    {"name": "compat", "algorithm": {"kl_to_ref": {"coef": 0.01}}, "train": {"steps": 10}}
).model_dump(mode="json")


def changed(path: str, value):
    recipe = copy.deepcopy(RECIPE)
    *parents, leaf = path.split(".")
    node = recipe
    for key in parents:
        node = node[key]
    node[leaf] = value
    return recipe


def _models(annotation) -> list[type[BaseModel]]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _models(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType, list, tuple):
        return [m for a in typing.get_args(annotation) for m in _models(a)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return []


def schema_keys(model: type[BaseModel] = Recipe, prefix: str = "") -> set[str]:
    """Every dotted key a resolved recipe can flatten to: leaves, optional sections (None), dict entries."""
    keys: set[str] = set()
    for attr, field in model.model_fields.items():
        path = prefix + (field.alias or attr)
        subs = [m for m in _models(field.annotation) if m is not model]
        origin = typing.get_origin(field.annotation)
        if origin is list or type(None) in typing.get_args(field.annotation) or not subs:
            keys.add(path)  # a leaf, a section that may be None, or a list (compared whole)
        if origin is dict:
            keys.add(path + ".<key>")
        if origin is list:
            continue
        for sub in subs:
            keys |= schema_keys(sub, path + ".")
    return keys


KEYS = schema_keys()


def test_identical_recipes_are_compatible():
    assert resume_incompatibilities(RECIPE, copy.deepcopy(RECIPE)) == []


@pytest.mark.parametrize("rule", RESUME_RULES, ids=lambda r: r.pattern)
def test_every_rule_names_a_real_schema_key(rule):
    assert any(fnmatchcase(key, rule.pattern) for key in KEYS), f"{rule.pattern} matches no recipe key"


def test_every_resolved_recipe_key_is_a_schema_key_and_loads_back():
    assert Recipe.model_validate(RECIPE).model_dump(mode="json") == RECIPE  # `as`, not `as_`
    flat = classify_recipe_changes({}, RECIPE)  # every key counts as added
    added = [line.split(":")[0] for lines in flat.values() for line in lines]
    assert added and set(added) <= KEYS


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("seed", 2),
        ("device", "cuda"),
        ("model.path", "other"),
        ("model.dtype", "bfloat16"),
        ("data.train.source", "gsm8k"),
        ("data.train.seed", 3),
        ("rollout.samples_per_prompt", 4),
        ("rollout.max_prompt_tokens", 256),
        ("rollout.max_response_tokens", 64),
        ("train.prompts_per_step", 8),
        ("learner.lr", 2e-6),
        ("learner.zero_stage", 3),
        ("learner.num_ranks", 2),
        ("algorithm.kl_to_ref.coef", 0.1),
        ("algorithm.loss.eps_high", 0.28),
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
        ("name", "renamed"),
        ("train.steps", 200),
        ("logging.tensorboard", False),
        ("eval.every_steps", 3),
        ("checkpoint.every_steps", 5),
        ("checkpoint.keep_last", 1),
        ("data.eval.source", "gsm8k"),
        ("data.eval.seed", 4),
        ("learner.micro_batch_tokens", 512),
        ("learner.gradient_checkpointing", True),
        ("learner.collective_timeout_s", 900.0),
        ("rollout.num_workers", 2),
        ("rollout.call_timeout_s", 60.0),
        ("rollout.sync.timeout_s", 60.0),
        ("resources.num_cpus", 4),
    ],
)
def test_harmless_changes_pass(path, value):
    new = changed(path, value)
    changes = classify_recipe_changes(RECIPE, new)
    assert changes[BREAKING] == [] and changes[UNCLASSIFIED] == []
    assert changes[HARMLESS][0].startswith(f"{path}: ")


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("rollout.temperature", 0.7),
        ("rollout.top_p", 0.9),
        ("rewards.wrong_score", -1.0),
        ("rewards.terms", [{"fn": "math", "weight": 1.0}, {"fn": "format", "weight": 0.1}]),
        ("train.async_mode", "one_step_off"),
    ],
)
def test_changes_of_behaviour_resume_with_a_warning(path, value):
    changes = classify_recipe_changes(RECIPE, changed(path, value))
    assert changes[BREAKING] == [] and changes[HARMLESS] == []
    assert [line.split(":")[0] for line in changes[UNCLASSIFIED]] == [path]
    warning = unclassified_warning(changes)
    assert warning is not None and path in warning and "resuming with 1 recipe change" in warning


def test_no_warning_without_unclassified_changes():
    assert unclassified_warning(classify_recipe_changes(RECIPE, changed("train.steps", 20))) is None


def test_added_and_removed_keys_count_as_changes():
    new = copy.deepcopy(RECIPE)
    new["algorithm"]["entropy_coef_new"] = 0.1
    del new["learner"]["zero_stage"]
    assert resume_incompatibilities(RECIPE, new) == [
        "algorithm.entropy_coef_new: '<absent>' -> 0.1 (changes the objective the optimizer state was built for)",
        "learner.zero_stage: 2 -> '<absent>' (optimizer, schedule or sharded state would not match)",
    ]


def test_rules_are_data_with_reasons():
    assert all(rule.reason and rule.verdict in (BREAKING, HARMLESS) for rule in RESUME_RULES)
    assert classify_key("data.eval.source").verdict == HARMLESS
    assert classify_key("data.train.source").verdict == BREAKING
    assert classify_key("rollout.temperature") is None


def test_run_refuses_breaking_and_warns_about_unclassified_changes(tmp_path, caplog):
    from rlvr.parts import RunError, check_resume_compatible

    recipe = Recipe.model_validate({**RECIPE, "rollout": {**RECIPE["rollout"], "temperature": 0.5}})
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(RECIPE))
    with caplog.at_level(logging.INFO, logger="rlvr.parts"):
        check_resume_compatible(tmp_path, recipe)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "rollout.temperature: 1.0 -> 0.5" in warnings[0]

    with pytest.raises(RunError, match=r"seed: 0 -> 5"):
        check_resume_compatible(tmp_path, recipe.model_copy(update={"seed": 5}))
