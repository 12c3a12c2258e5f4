"""`model.dtype` (one dtype for learner and rollout engine), the probe tolerance it implies, and GPU reservations."""

from __future__ import annotations

import pytest

from rlvr.config import Recipe, RecipeError, validate_dict
from rlvr.config.model import ModelConfig
from rlvr.learner.rank import learner_settings


@pytest.mark.parametrize(
    ("dtype", "device", "resolved"),
    [
        ("auto", "cpu", "float32"),
        ("auto", "cuda", "bfloat16"),
        ("bfloat16", "cpu", "bfloat16"),
        ("float16", "cuda", "float16"),
        ("float32", "cuda", "float32"),
    ],
)
def test_model_dtype_resolves_per_device(dtype, device, resolved):
    assert ModelConfig(dtype=dtype).resolved_dtype(device) == resolved


def test_learner_settings_take_the_model_dtype():
    recipe = Recipe.model_validate({"model": {"dtype": "bfloat16"}})
    settings = learner_settings(
        recipe.learner, seed=0, total_updates=1, dtype=recipe.model.resolved_dtype("cpu")
    )
    assert settings.dtype == "bfloat16"


def test_learner_dtype_is_not_a_second_key():
    with pytest.raises(RecipeError, match=r"learner.dtype: unknown key"):
        validate_dict({"learner": {"dtype": "bfloat16"}})


def test_eval_temperature_lives_in_eval_only():
    with pytest.raises(RecipeError, match=r"rollout.eval_temperature: unknown key"):
        validate_dict({"rollout": {"eval_temperature": 0.0}})
    assert validate_dict({"eval": {"temperature": 0.6}})[0].eval.temperature == 0.6


@pytest.mark.parametrize(("dtype", "tol"), [("float32", 1e-4), ("bfloat16", 5e-2), ("float16", 5e-2)])
def test_probe_tolerance_follows_the_dtype_unless_set(dtype, tol):
    recipe = Recipe.model_validate({"model": {"dtype": dtype}})
    assert recipe.rollout.sync.tolerance_for(recipe.model.resolved_dtype("cpu")) == tol
    explicit = Recipe.model_validate({"rollout": {"sync": {"tolerance": 1e-3}}})
    assert explicit.rollout.sync.tolerance_for(dtype) == 1e-3


@pytest.mark.parametrize("key", ["gpus_per_learner", "gpus_per_rollout_worker"])
def test_gpus_on_a_cpu_run_are_refused(key):
    with pytest.raises(RecipeError, match=rf"resources.{key}: 1.0 GPUs per actor on device: cpu"):
        validate_dict({"device": "cpu", "resources": {key: 1}})
    assert validate_dict({"device": "cuda", "resources": {key: 1}})[0].resources.model_dump()[key] == 1
