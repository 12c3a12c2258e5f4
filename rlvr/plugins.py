"""The recipe's `plugins:` at start-up: import them, then resolve every registry name the recipe uses.

`rlvr train` and `rlvr validate` both call `load_plugins` first among the start-up checks, so a name that no
built-in or plugin registers (`algorithm.estimator.name: grpo2`) stops the command in seconds with the
registered names, instead of failing in the learner actors after the model has loaded. The driver's imported
plugins (`rlvr.registry.loaded_plugins`) are what the learner and rollout actors import when they start.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from rlvr.registry import PluginError, import_plugins, spec_kind

if TYPE_CHECKING:
    from rlvr.config import Recipe


class PluginNameError(RuntimeError):
    """Recipe names that no registry resolves; `problems` has one line per name."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def registry_problems(recipe: Recipe, recipe_dir: str | os.PathLike | None = None) -> list[str]:
    """One line per estimator / loss / modifier / reward name in `recipe` that does not resolve."""
    from rlvr.algo import ESTIMATORS, LOSS_MODIFIERS, OBJECTIVES, POLICY_LOSSES  # registers the built-ins
    from rlvr.reward.registry import REWARDS

    algo = recipe.algorithm
    checks = [("algorithm.estimator.name", ESTIMATORS, algo.estimator.name)]
    loss = algo.loss.name
    if loss not in OBJECTIVES:
        checks.append(("algorithm.loss.name", POLICY_LOSSES, loss))
    checks += [
        (f"algorithm.modifiers[{i}].name", LOSS_MODIFIERS, m.name) for i, m in enumerate(algo.modifiers)
    ]
    checks += [(f"rewards.terms[{i}].fn", REWARDS, t.fn) for i, t in enumerate(recipe.rewards.terms)]
    problems = []
    for key, registry, name in checks:
        problem = registry.check(name, recipe_dir)
        if problem is not None:
            if registry is POLICY_LOSSES and spec_kind(name) == "name":
                problem += f"; whole objectives: {', '.join(OBJECTIVES.names())}"
            problems.append(f"{key}: {problem}")
    return problems


def load_plugins(recipe: Recipe, recipe_dir: str | os.PathLike | None = None) -> list[str]:
    """Import `recipe.plugins` (relative `.py` files against `recipe_dir`) and check the recipe's names.

    Returns:
        The plugins' absolute specs (what every actor imports at start-up).

    Raises:
        PluginError: a plugin is missing or does not import.
        PluginNameError: a registry name in the recipe resolves to nothing (each line lists the known names).
    """
    try:
        specs = import_plugins(recipe.plugins, recipe_dir)
    except PluginError as exc:
        raise PluginError(f"plugins: {exc}") from exc
    problems = registry_problems(recipe, recipe_dir)
    if problems:
        raise PluginNameError(problems)
    return specs
