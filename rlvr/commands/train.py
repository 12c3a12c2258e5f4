"""`rlvr train RECIPE [key=value ...] [--resume auto|PATH]`: run the RL loop.

Before anything heavy starts, the run directory is locked (one `rlvr train` per directory) and checked to
belong to this recipe; the start-up checks (`rlvr.preflight`: model, tokenizer, data, prompt lengths) run in
the driver before any Ray actor. Engine, Ray and library output goes to `<run_dir>/run.log`; the console
shows one line per step and real warnings. A failure's traceback is written to the log file, and the user
sees one line (see `rlvr.cli`).
"""

from __future__ import annotations

import argparse
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
    from rlvr.reaper import start_reaper
    from rlvr.rundir import check_run_dir_recipe, run_dir_lock
    from rlvr.runlog import setup_driver_logging

    recipe, warnings = load_recipe(args.recipe, args.overrides)
    run_dir = Path(recipe.run_dir)
    with run_dir_lock(run_dir):
        log_path = setup_driver_logging(run_dir, recipe.logging.log_level)
        try:
            for w in warnings:
                print(f"warning: {w}", file=sys.stderr)
            sizes = derived_sizes(recipe)
            print(
                "rlvr train: " + ", ".join(f"{k}={v}" for k, v in sizes.as_dict().items()),
                file=sys.stderr,
            )
            print(f"rlvr train: engine and library logs go to {log_path}", file=sys.stderr, flush=True)
            check_run_dir_recipe(run_dir, recipe.model_dump(mode="json"), args.resume)
            start_reaper()  # if this process is killed, Ray, vLLM and reward workers of the run go with it
            from rlvr.loop import train

            final = train(recipe, resume=args.resume, recipe_dir=str(Path(args.recipe).resolve().parent))
        except BaseException as exc:
            # The user sees one line (rlvr.cli); the whole story stays in the run's log file.
            _log_failure(exc, log_path)
            raise
    shown = {k: v for k, v in final.items() if k.startswith(("eval/", "accuracy/mean", "reward/mean"))}
    print("rlvr train: done " + " ".join(f"{k}={v:.4g}" for k, v in sorted(shown.items())), file=sys.stderr)
    return 0


def _log_failure(exc: BaseException, log_path: Path) -> None:
    """The traceback goes into the run's log file only, whatever the recipe's log level."""
    import traceback

    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    with open(log_path, "a", encoding="utf-8") as f:
        f.write(f"rlvr train failed:\n{text}")
