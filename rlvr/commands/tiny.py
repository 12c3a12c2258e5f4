"""`rlvr tiny build [--out DIR] [--force]`: build (or reuse) the project's tiny reasoning model."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from rlvr.tiny import build

    sub = parser.add_subparsers(dest="tiny_command", metavar="ACTION", required=True)
    build_parser = sub.add_parser(
        "build", help="tokenizer + synthetic task + SFT + held-out accuracy, cached"
    )
    build.add_arguments(build_parser)


def run(args: argparse.Namespace) -> int:
    from rlvr.tiny import build

    return build.run(args)
