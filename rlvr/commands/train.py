"""`rlvr train RECIPE [key=value ...] [--resume auto|PATH]`: run the RL loop."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from rlvr.config import derived_sizes, load_recipe


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", help="recipe YAML file")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="overrides, e.g. train.steps=10")
    parser.add_argument(
        "--resume",
        default=None,
        metavar="auto|PATH",
        help="continue from the latest complete checkpoint of this run (auto) or from PATH",
    )


def run(args: argparse.Namespace) -> int:
    recipe, warnings = load_recipe(args.recipe, args.overrides)
    logging.basicConfig(
        level=recipe.logging.log_level,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    sizes = derived_sizes(recipe)
    print(
        "rlvr train: " + ", ".join(f"{k}={v}" for k, v in sizes.as_dict().items()),
        file=sys.stderr,
        flush=True,
    )
    from rlvr.loop import train

    final = train(recipe, resume=args.resume, recipe_dir=str(Path(args.recipe).resolve().parent))
    shown = {k: v for k, v in final.items() if k.startswith(("eval/", "accuracy/mean", "reward/mean"))}
    print("rlvr train: done " + " ".join(f"{k}={v:.4g}" for k, v in sorted(shown.items())), file=sys.stderr)
    return 0
