"""`rlvr validate RECIPE [key=value ...]`: check a recipe without running anything."""

from __future__ import annotations

import argparse
import sys

import yaml

from rlvr.config import derived_sizes, load_recipe


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", help="recipe YAML file")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="overrides, e.g. train.steps=10")
    parser.add_argument("--quiet", action="store_true", help="print only the derived sizes")


def run(args: argparse.Namespace) -> int:
    recipe, warnings = load_recipe(args.recipe, args.overrides)
    if not args.quiet:
        print(f"# resolved recipe: {args.recipe}")
        print(yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False).rstrip())
    print("# derived sizes")
    for key, value in derived_sizes(recipe).as_dict().items():
        print(f"{key}: {value}")
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"ok: {args.recipe} is valid", file=sys.stderr)
    return 0
