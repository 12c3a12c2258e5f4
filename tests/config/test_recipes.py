"""Every recipe under recipes/ loads and validates (recursively), and the CLI agrees."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlvr.config import derived_sizes, load_recipe

ROOT = Path(__file__).resolve().parents[2]
RECIPES = sorted((ROOT / "recipes").rglob("*.yaml"))


def test_there_are_recipes():
    assert ROOT.joinpath("recipes", "quickstart.yaml") in RECIPES


@pytest.mark.parametrize("path", RECIPES, ids=[str(p.relative_to(ROOT)) for p in RECIPES])
def test_every_recipe_validates(path: Path):
    recipe, _warnings = load_recipe(path)
    sizes = derived_sizes(recipe)
    assert sizes.samples_per_step == recipe.train.prompts_per_step * recipe.rollout.samples_per_prompt
    assert sizes.samples_per_update * recipe.learner.updates_per_step == sizes.samples_per_step


@pytest.mark.parametrize("path", RECIPES, ids=[str(p.relative_to(ROOT)) for p in RECIPES])
def test_every_recipe_is_headed_by_its_command(path: Path):
    head = path.read_text().splitlines()[:6]
    assert any("rlvr " in line and line.lstrip().startswith("#") for line in head), (
        f"{path.name} must open with a comment giving its launch command"
    )
