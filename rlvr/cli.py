"""`rlvr` command line. Parsing is instant: heavy imports (torch, vLLM, Ray) happen inside commands.

Each command lives in a module exposing ``add_arguments(parser)`` and ``run(args) -> int``; the table
below is the whole dispatch.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("rlvr.commands.validate", "check a recipe and print it resolved, with derived sizes"),
    "train": ("rlvr.commands.train", "run the RL loop (generate, reward, update, sync) on a recipe"),
    "tiny": ("rlvr.commands.tiny", "build the project's tiny model (`rlvr tiny build`)"),
    "eval": ("rlvr.commands.eval", "pass@k / avg@k / maj@k of a checkpoint (or HF model) on a dataset"),
    "export": ("rlvr.commands.export", "copy a checkpoint's HF export out, verified and atomically"),
    "plot": ("rlvr.commands.plot", "training curves (PNG) from a run's metrics.jsonl"),
    "launch": ("rlvr.commands.launch", "print a SLURM or Ray launch script sized by a recipe's resources"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rlvr", description="Reinforcement learning with verifiable rewards for reasoning LLMs."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(cmd)
        cmd.set_defaults(_module=module)
    return parser


def is_user_error(exc: BaseException) -> bool:
    """Errors raised by rlvr on purpose (bad recipe, data, reward, sync...) carry a message, not a bug."""
    module = type(exc).__module__ or ""
    return module.split(".")[0] in {"rlvr", "rewards"} and type(exc).__name__.endswith("Error")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args._module.run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if not is_user_error(exc):
            raise
        problems = getattr(exc, "problems", None) or [str(exc)]
        source = getattr(exc, "source", None)
        print(f"error: {source}:" if source else "error:", file=sys.stderr)
        for line in problems:
            print(f"  - {line}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
