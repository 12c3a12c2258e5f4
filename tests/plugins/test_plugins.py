"""`plugins:` end to end: validation refuses unknown method / reward names with the registered list, a plugin
file's names pass it, and (integration) a plugin estimator, loss modifier and reward train 2 real steps with 2
learner ranks, the modifier's metric coming back from the learner actors into metrics.jsonl.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rlvr.cli import main
from rlvr.config import Recipe
from rlvr.plugins import PluginNameError, load_plugins
from rlvr.registry import PluginError, loaded_plugins

FIXTURE = Path(__file__).with_name("fixture_plugin.py")
PLUGIN_NAMES = {
    "algorithm": {"estimator": {"name": "mine_centered"}, "modifiers": [{"name": "mine_touch"}]},
    "rewards": {"terms": [{"fn": "mine_digits"}]},
}


def write(directory: Path, recipe: dict) -> Path:
    path = directory / "recipe.yaml"
    path.write_text(yaml.safe_dump({"name": "plug", "device": "cpu", **recipe}))
    return path


@pytest.mark.parametrize(
    ("section", "key", "expected"),
    [
        ({"algorithm": {"estimator": {"name": "grpo2"}}}, "algorithm.estimator.name", "did you mean grpo"),
        ({"algorithm": {"loss": {"name": "ppo_clp"}}}, "algorithm.loss.name", "did you mean ppo_clip"),
        ({"algorithm": {"modifiers": [{"name": "mine_tuch"}]}}, "algorithm.modifiers[0].name", "clip_cov"),
        ({"rewards": {"terms": [{"fn": "maths"}]}}, "rewards.terms[0].fn", "did you mean math"),
    ],
)
def test_validate_refuses_an_unknown_name_with_the_registered_ones(tmp_path, capsys, section, key, expected):
    recipe = write(tmp_path, section)
    assert main(["validate", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert key in err and expected in err and "registered" in err
    assert "Traceback" not in err


def test_plugin_names_resolve_after_the_plugins_are_imported(tmp_path):
    recipe = Recipe.model_validate({**PLUGIN_NAMES, "plugins": [str(FIXTURE)]})
    bare = Recipe.model_validate(PLUGIN_NAMES)
    load_plugins(recipe, tmp_path)
    assert str(FIXTURE) in loaded_plugins()  # what the learner and rollout actors are handed
    load_plugins(bare, tmp_path)  # registered in this process now, so the names resolve


def test_a_missing_or_malformed_plugin_is_one_clear_error(tmp_path, capsys):
    with pytest.raises(PluginError, match=r"plugins: file 'nope\.py' not found"):
        load_plugins(Recipe.model_validate({"plugins": ["nope.py"]}), tmp_path)
    with pytest.raises(PluginError, match="no_such_module_xyz"):
        load_plugins(Recipe.model_validate({"plugins": ["no_such_module_xyz"]}), tmp_path)
    assert main(["validate", str(write(tmp_path, {"plugins": ["bad plugin"]}))]) == 2
    assert "neither a module name" in capsys.readouterr().err


def test_an_algorithm_file_path_is_refused_in_favour_of_plugins():
    with pytest.raises(ValueError, match="list the file under plugins:"):
        Recipe.model_validate({"algorithm": {"estimator": {"name": "my_plugin.py:mine"}}})


def test_names_unknown_without_the_plugin_are_each_reported(tmp_path):
    names = {
        "algorithm": {"estimator": {"name": "zz_est"}, "modifiers": [{"name": "zz_mod"}]},
        "rewards": {"terms": [{"fn": "zz_reward"}]},
    }
    with pytest.raises(PluginNameError) as info:
        load_plugins(Recipe.model_validate(names), tmp_path)
    keys = [line.split(":")[0] for line in info.value.problems]
    assert keys == ["algorithm.estimator.name", "algorithm.modifiers[0].name", "rewards.terms[0].fn"]


@pytest.mark.integration
def test_plugin_estimator_modifier_and_reward_train_two_steps_on_two_ranks(tmp_path, random_model):
    shutil.copy(FIXTURE, tmp_path / "my_plugin.py")
    recipe = write(
        tmp_path,
        {
            "seed": 1,
            "plugins": ["my_plugin.py"],  # relative to the recipe
            "model": {"path": str(random_model)},
            "data": {"train": {"limit": 64}},
            "train": {"steps": 2, "prompts_per_step": 4},
            "rollout": {"samples_per_prompt": 4, "max_prompt_tokens": 64, "max_response_tokens": 24},
            "learner": {"num_ranks": 2, "zero_stage": 2, "lr": 1e-3, "micro_batch_tokens": 256},
            "eval": {"every_steps": 0, "at_start": False},
            "logging": {"run_dir": str(tmp_path / "run")},
            "resources": {"cpus_per_learner": 0.5},
            **PLUGIN_NAMES,
        },
    )
    out = subprocess.run(
        [sys.executable, "-m", "rlvr.cli", "train", str(recipe)],
        capture_output=True,
        text=True,
        timeout=900,
        env=dict(os.environ),
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-4000:]
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines if line.strip()]
    assert [r["step"] for r in records] == [1, 2]
    for r in records:
        assert r["learner/mine/touched"] == 1.0  # the plugin's modifier ran in the learner actors
        assert math.isfinite(r["learner/policy_loss"])
        assert r["reward/mean"] > 0  # the plugin's digit reward scored the completions
