"""Schema errors, overrides and `base:` inheritance."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from rlvr.config import Recipe, RecipeError, apply_overrides, derived_sizes, load_recipe, validate_dict


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def problems(data: dict) -> list[str]:
    with pytest.raises(RecipeError) as info:
        validate_dict(data)
    return info.value.problems


def test_defaults_are_a_valid_recipe():
    recipe, _warnings = validate_dict({})
    assert isinstance(recipe, Recipe)
    assert recipe.rollout.samples_per_prompt >= 1


def test_misspelt_key_names_key_and_suggestion():
    (line,) = problems({"rollout": {"samples_per_promt": 4}})
    assert line.startswith("rollout.samples_per_promt:")
    assert "did you mean 'samples_per_prompt'" in line


def test_misspelt_nested_key_suggestion():
    (line,) = problems({"learner": {"lr_schedule": {"warmup_update": 3}}})
    assert "learner.lr_schedule.warmup_update" in line
    assert "'warmup_updates'" in line


def test_unknown_top_level_key_lists_suggestion():
    (line,) = problems({"trian": {"steps": 3}})
    assert line.startswith("trian:") and "'train'" in line


def test_wrong_type_names_key_and_value():
    (line,) = problems({"train": {"steps": "ten"}})
    assert line.startswith("train.steps:")
    assert "'ten'" in line


def test_out_of_range_value():
    (line,) = problems({"rollout": {"samples_per_prompt": 0}})
    assert line.startswith("rollout.samples_per_prompt:") and "0" in line


def test_every_problem_reported_once():
    lines = problems({"train": {"steps": "x", "prompts_per_step": -1}, "seeed": 1})
    assert len(lines) == 3


def test_cross_field_shape_check():
    lines = problems({"train": {"prompts_per_step": 10}, "learner": {"updates_per_step": 3}})
    assert any(line.startswith("learner.updates_per_step:") for line in lines)
    lines = problems({"train": {"prompts_per_step": 6}, "learner": {"updates_per_step": 2, "num_ranks": 2}})
    assert any(line.startswith("learner.num_ranks:") for line in lines)


def test_derived_sizes():
    recipe, _ = validate_dict(
        {
            "train": {"prompts_per_step": 16},
            "rollout": {"samples_per_prompt": 4, "max_prompt_tokens": 10, "max_response_tokens": 30},
            "learner": {"updates_per_step": 2, "num_ranks": 2},
        }
    )
    sizes = derived_sizes(recipe)
    assert sizes.samples_per_step == 64
    assert sizes.max_tokens_per_step == 64 * 40
    assert sizes.prompts_per_update == 8
    assert sizes.samples_per_update == 32
    assert sizes.samples_per_update_per_rank == 16


def test_overrides_are_typed_and_nested():
    data = apply_overrides(
        {"train": {"steps": 3}}, ["train.steps=7", "learner.lr=3e-4", "logging.jsonl=false"]
    )
    assert data["train"]["steps"] == 7
    assert data["learner"]["lr"] == pytest.approx(3e-4)
    assert data["logging"]["jsonl"] is False


def test_override_into_list_by_index():
    data = apply_overrides({"a": [{"w": 1}, {"w": 2}]}, ["a.1.w=5"])
    assert data["a"] == [{"w": 1}, {"w": 5}]
    with pytest.raises(RecipeError):
        apply_overrides({"a": [{"w": 1}]}, ["a.3.w=5"])


@pytest.mark.parametrize("bad", ["noequals", "=3", "a..b=1"])
def test_malformed_override(bad):
    with pytest.raises(RecipeError) as info:
        apply_overrides({}, [bad])
    assert bad in info.value.problems[0]


def test_override_typo_is_caught_with_suggestion(tmp_path):
    path = write(tmp_path, "r.yaml", "name: r\n")
    with pytest.raises(RecipeError) as info:
        load_recipe(path, ["rollout.temperture=0.5"])
    assert "did you mean 'temperature'" in info.value.problems[0]


def test_base_inheritance_overlays_one_level(tmp_path):
    write(tmp_path, "base.yaml", "name: base\ntrain: {steps: 5, prompts_per_step: 8}\nseed: 3\n")
    child = write(tmp_path, "child.yaml", "base: base.yaml\nname: child\ntrain: {steps: 9}\n")
    recipe, _ = load_recipe(child)
    assert recipe.name == "child"
    assert recipe.train.steps == 9
    assert recipe.train.prompts_per_step == 8  # kept from the base
    assert recipe.seed == 3


def test_base_relative_to_recipe_dir(tmp_path):
    (tmp_path / "sub").mkdir()
    write(tmp_path, "base.yaml", "seed: 11\n")
    child = write(tmp_path, "sub/child.yaml", "base: ../base.yaml\n")
    assert load_recipe(child)[0].seed == 11


def test_missing_base_and_cycle(tmp_path):
    child = write(tmp_path, "c.yaml", "base: nope.yaml\n")
    with pytest.raises(RecipeError, match="not found"):
        load_recipe(child)
    write(tmp_path, "x.yaml", "base: y.yaml\n")
    write(tmp_path, "y.yaml", "base: x.yaml\n")
    with pytest.raises(RecipeError, match="chain"):
        load_recipe(tmp_path / "x.yaml")


def test_bad_yaml_names_line(tmp_path):
    path = write(tmp_path, "bad.yaml", "train:\n  steps: [1, 2\n")
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    assert "line" in info.value.problems[0]


def test_top_level_must_be_mapping(tmp_path):
    path = write(tmp_path, "list.yaml", "- 1\n- 2\n")
    with pytest.raises(RecipeError, match="mapping"):
        load_recipe(path)


def test_base_overlay_switching_variant_replaces_section(tmp_path):
    write(tmp_path, "base.yaml", "algorithm:\n  loss: {name: ppo_clip, eps_low: 0.2, eps_high: 0.28}\n")
    child = write(tmp_path, "child.yaml", "base: base.yaml\nalgorithm:\n  loss: {name: gppo}\n")
    recipe, _ = load_recipe(child)
    assert recipe.algorithm.loss.name == "gppo"
    assert recipe.algorithm.loss.eps_high == 0.2  # GPPO's own default, not the base's PPO setting
    same = write(
        tmp_path, "same.yaml", "base: base.yaml\nalgorithm:\n  loss: {name: ppo_clip, eps_low: 0.1}\n"
    )
    loss = load_recipe(same)[0].algorithm.loss
    assert (loss.eps_low, loss.eps_high) == (0.1, 0.28)  # same variant: merged
