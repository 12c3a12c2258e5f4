"""Typed recipe schema, loading, overrides and validation. Imports no torch (and nothing heavy)."""

from rlvr.config.loader import RecipeError, apply_overrides, load_recipe, load_recipe_dict, validate_dict
from rlvr.config.schema import DerivedSizes, Issue, Recipe, check_recipe, derived_sizes

__all__ = [
    "DerivedSizes",
    "Issue",
    "Recipe",
    "RecipeError",
    "apply_overrides",
    "check_recipe",
    "derived_sizes",
    "load_recipe",
    "load_recipe_dict",
    "validate_dict",
]
