"""`rlvr launch slurm|ray RECIPE [key=value ...]`: print a launch script sized by the recipe's `resources`.

    rlvr launch slurm recipes/methods/grpo.yaml device=cuda ... > job.sh && sbatch job.sh

It only renders (`rlvr.launch`); nothing is submitted or started, and nothing heavier than the config layer is
imported.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "target", choices=("slurm", "ray"), help="slurm: an sbatch script; ray: head/worker/train roles"
    )
    parser.add_argument("recipe", help="recipe YAML file (the path the script will pass to `rlvr train`)")
    parser.add_argument(
        "overrides", nargs="*", metavar="key=value", help="overrides, e.g. learner.num_ranks=8"
    )
    parser.add_argument(
        "--resume",
        default=None,
        metavar="auto|PATH",
        help="the script runs `rlvr train ... --resume auto|PATH` (continue the run from its latest checkpoint)",
    )
    parser.add_argument("-o", "--output", help="write the script to this file (executable) instead of stdout")


def run(args: argparse.Namespace) -> int:
    from rlvr.launch import render

    script = render(args.target, args.recipe, args.overrides, args.resume)
    if args.output is None:
        print(script, end="")
        return 0
    out = Path(args.output)
    out.write_text(script)
    os.chmod(out, 0o755)
    print(f"wrote {out}")
    return 0
