"""Training curves from a run's ``metrics.jsonl``: ``rlvr plot RUN_DIR``.

Reads one JSON object per line (``{"step": 3, "time": 12.5, "reward/mean": 0.4, ...}``) and
writes PNGs into ``RUN_DIR/plots/``: ``curves.png`` (every panel as a subplot) and one file per
panel (``reward.png``, ``accuracy.png``, ...). Panels whose metrics are absent are skipped.

The log is appended to across resumes, so it may repeat steps (a segment that crashed after
logging steps it never checkpointed) and contain a torn line (a write cut by the crash, then
continued by the next segment). For each metric the LAST value logged for a step wins, and lines
that are not JSON objects are skipped with a count on stderr.

matplotlib is imported inside :func:`plot_run` (Agg, no display), so importing this module is cheap.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, NamedTuple

METRICS_FILE = "metrics.jsonl"
PLOTS_DIR = "plots"
COMBINED_NAME = "curves.png"
# Wildcard patterns would otherwise also pull in spread statistics and drown the means.
WILDCARD_EXCLUDE = ("*/std", "*/min", "*/max", "*/count")
MAX_SERIES_PER_PANEL = 6
SMOOTH_MIN_POINTS = 20


class Panel(NamedTuple):
    """One subplot: which metric keys (fnmatch patterns, in legend order) it draws."""

    name: str
    title: str
    ylabel: str
    patterns: tuple[str, ...]


PANELS: tuple[Panel, ...] = (
    Panel("reward", "Reward", "reward", ("reward/mean", "reward/*")),
    Panel(
        "accuracy",
        "Accuracy (train samples, held-out eval)",
        "accuracy",
        ("accuracy/mean", "eval/accuracy", "eval/pass@*", "eval/maj@*", "eval/avg@*"),
    ),
    Panel("entropy", "Policy entropy", "nats / token", ("entropy/mean",)),
    Panel(
        "response_length",
        "Response length",
        "tokens",
        ("response_length/mean", "response_length/correct_mean", "response_length/wrong_mean"),
    ),
    Panel("kl", "KL to reference", "KL", ("kl/mean", "kl/*")),
    Panel("loss", "Loss", "loss", ("loss/*",)),
)


class PlotError(Exception):
    """The run has nothing that can be plotted (missing/empty log, no known metrics)."""


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def read_metrics(path: str | os.PathLike) -> dict[str, list[tuple[int, float]]]:
    """Parse a ``metrics.jsonl`` into ``{key: [(step, value), ...]}`` sorted by step.

    Non-numeric and non-finite values are dropped; a repeated step keeps its last value.

    Raises:
        PlotError: The file is missing or has no record with a step.
    """
    path = Path(path)
    if not path.is_file():
        raise PlotError(f"{path} not found: is this a run directory? (expected {METRICS_FILE} inside)")
    series: dict[str, dict[int, float]] = {}
    records = skipped = 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                skipped += 1
                continue
            step = record.get("step") if isinstance(record, dict) else None
            if isinstance(step, bool) or not isinstance(step, int):
                skipped += 1
                continue
            records += 1
            for key, value in record.items():
                number = _number(value)
                if key not in ("step", "time") and number is not None:
                    series.setdefault(key, {})[step] = number
    if skipped:
        print(f"rlvr plot: skipped {skipped} malformed line(s) in {path}", file=sys.stderr)
    if records == 0:
        raise PlotError(f"{path} has no metric records (empty file or no line with a 'step')")
    return {key: sorted(points.items()) for key, points in series.items()}


def panel_keys(panel: Panel, keys: list[str]) -> list[str]:
    """Metric keys a panel draws, in pattern order, without duplicates."""
    chosen: list[str] = []
    for pattern in panel.patterns:
        wildcard = any(ch in pattern for ch in "*?[")
        for key in sorted(keys):
            if key in chosen or not fnmatchcase(key, pattern):
                continue
            if wildcard and any(fnmatchcase(key, ex) for ex in WILDCARD_EXCLUDE):
                continue
            chosen.append(key)
    return chosen[:MAX_SERIES_PER_PANEL]


def _smooth(values: list[float], window: int) -> list[float]:
    """Trailing moving average (no look-ahead, so the last point is not pulled by the future)."""
    out, total = [], 0.0
    for i, value in enumerate(values):
        total += value
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def _draw_panel(ax: Any, panel: Panel, keys: list[str], series: dict[str, list[tuple[int, float]]]) -> None:
    for index, key in enumerate(keys):
        steps = [s for s, _ in series[key]]
        values = [v for _, v in series[key]]
        color = f"C{index}"
        if key.startswith("eval/") or len(values) < SMOOTH_MIN_POINTS:
            ax.plot(steps, values, color=color, marker="o", markersize=3.5, linewidth=1.6, label=key)
        else:
            ax.plot(steps, values, color=color, alpha=0.25, linewidth=0.9)
            window = max(3, len(values) // 25)
            ax.plot(
                steps,
                _smooth(values, window),
                color=color,
                linewidth=2.0,
                label=f"{key} (moving avg {window})",
            )
    ax.set_title(panel.title, fontsize=11)
    ax.set_xlabel("step")
    ax.set_ylabel(panel.ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")


def plot_run(run_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> list[Path]:
    """Write training-curve PNGs for a run.

    Args:
        run_dir: Directory holding ``metrics.jsonl``.
        out_dir: Where to write PNGs; default ``run_dir/plots``.

    Returns:
        Paths written: ``curves.png`` first, then one file per drawn panel.

    Raises:
        PlotError: Missing or empty log, or none of the known metrics present.
    """
    from matplotlib.figure import Figure  # Figure without pyplot: Agg canvas, no global state

    run_dir = Path(run_dir)
    series = read_metrics(run_dir / METRICS_FILE)
    drawn = [(panel, panel_keys(panel, list(series))) for panel in PANELS]
    drawn = [(panel, keys) for panel, keys in drawn if keys]
    if not drawn:
        known = ", ".join(p for panel in PANELS for p in panel.patterns)
        raise PlotError(f"no plottable metrics in {run_dir / METRICS_FILE} (looked for {known})")
    out = Path(out_dir) if out_dir is not None else run_dir / PLOTS_DIR
    out.mkdir(parents=True, exist_ok=True)

    ncols = 1 if len(drawn) == 1 else 2
    nrows = math.ceil(len(drawn) / ncols)
    fig = Figure(figsize=(6.4 * ncols, 3.8 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, (panel, keys) in zip(axes, drawn):
        _draw_panel(ax, panel, keys, series)
    for ax in axes[len(drawn) :]:
        ax.set_visible(False)
    fig.suptitle(run_dir.resolve().name, fontsize=12)
    written = [out / COMBINED_NAME]
    fig.savefig(written[0], dpi=110)

    for panel, keys in drawn:
        single = Figure(figsize=(6.4, 3.8), layout="constrained")
        _draw_panel(single.subplots(), panel, keys, series)
        path = out / f"{panel.name}.png"
        single.savefig(path, dpi=110)
        written.append(path)
    return written


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``rlvr plot``."""
    parser.add_argument("run_dir", help=f"run directory containing {METRICS_FILE}")
    parser.add_argument("--out", default=None, help=f"output directory (default RUN_DIR/{PLOTS_DIR})")


def run(args: argparse.Namespace) -> int:
    """Entry point of ``rlvr plot``: prints the written paths; exit code 1 with a message on error."""
    try:
        paths = plot_run(args.run_dir, args.out)
    except PlotError as err:
        print(f"rlvr plot: error: {err}", file=sys.stderr)
        return 1
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    _parser = argparse.ArgumentParser(prog="rlvr plot", description=__doc__.splitlines()[0])
    add_arguments(_parser)
    sys.exit(run(_parser.parse_args()))
