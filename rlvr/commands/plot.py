"""`rlvr plot RUN_DIR [--out DIR]`: training curves (PNG) from a run's ``metrics.jsonl``.

A thin wrapper over :func:`rlvr.plot.plot_run`; a missing or empty log raises ``PlotError``, which
the CLI prints as a message (exit 2). matplotlib is imported only when plotting.
"""

from __future__ import annotations

import argparse

from rlvr.plot import METRICS_FILE, PLOTS_DIR, plot_run


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``rlvr plot``."""
    parser.add_argument("run_dir", help=f"run directory containing {METRICS_FILE}")
    parser.add_argument("--out", default=None, help=f"output directory (default: RUN_DIR/{PLOTS_DIR})")


def run(args: argparse.Namespace) -> int:
    """Entry point of ``rlvr plot``: write the PNGs and print their paths, combined figure first."""
    for path in plot_run(args.run_dir, args.out):
        print(path)
    return 0
