"""`rlvr validate RECIPE [key=value ...]`: check a recipe and its inputs without starting any engine.

Beyond the schema, it runs the start-up checks of `rlvr train` (`rlvr.preflight`): the model folder exists
(or the hub id loads), the tokenizer loads and has a chat template where one is needed, every dataset file
loads and its rows pass the format adapter, `train.prompts_per_step` fits the dataset and every prompt fits
`rollout.max_prompt_tokens`. It never builds anything: with `model.path: tiny` not yet built it says so and
checks the data without the tokenizer.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

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
    for line in check_recipe_inputs(recipe, Path(args.recipe).resolve().parent):
        print(line, file=sys.stderr)
    print(f"ok: {args.recipe} is valid", file=sys.stderr)
    return 0


def check_recipe_inputs(recipe, recipe_dir: Path) -> list[str]:
    """Run the start-up checks without building or downloading anything; return what was (not) checked.

    Raises:
        StartupError: the first input that `rlvr train` would fail on.
    """
    from rlvr.preflight import check_inputs

    notes: list[str] = []
    check_inputs(recipe, recipe_dir, build=False, notes=notes)
    return notes
