"""Shared harness of the method comparisons: one `rlvr train` per (arm, seed), then mean ± sd and plots.

An arm is a method recipe under `recipes/methods/` plus an overlay (deep-merged onto the resolved recipe; a
`None` value sets the key to null). The harness adds the comparison's budget (steps, prompts, samples,
evaluation) and writes the fully resolved recipe into the arm's run directory, so the run does not depend
on later edits of the method recipes. Run directories are keyed by the arm's name and a hash of its resolved
recipe, so two comparisons that run the same arm with the same settings share its runs (the GRPO baseline),
and a finished run (`done.json`) is never run again.

Each comparison script declares its arms and metrics and calls `main`; `--aggregate-only` rebuilds the
numbers and plots from existing run directories without training.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = Path(os.environ.get("RLVR_EXP_ROOT", "/tmp/rlvr-exp"))
RESULTS_DIR = REPO / "experiments" / "results"
PLOTS_DIR = REPO / "docs" / "results"


@dataclass(frozen=True)
class Arm:
    """One training configuration of a comparison.

    Attributes:
        name: Label in tables and plots, and the run directory's prefix.
        recipe: Method recipe, relative to the repository root.
        overlay: Recipe keys that differ from the method recipe (nested mapping).
    """

    name: str
    recipe: str
    overlay: dict[str, Any] = field(default_factory=dict)


# ---- recipes --------------------------------------------------------------------------------------------


def merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """`base` updated by `overlay`: nested mappings merge, everything else (None included) replaces."""
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def resolved_recipe(arm: Arm, budget: dict[str, Any], seed: int) -> dict[str, Any]:
    """The arm's recipe with its `base:` chain applied, then the budget, then the arm's overlay and seed."""
    from rlvr.config.loader import read_yaml, resolve_base

    path = (REPO / arm.recipe).resolve()
    data = resolve_base(path, read_yaml(path))
    data = merge(merge(data, budget), arm.overlay)
    data["seed"] = seed
    data["name"] = arm.name
    return data


def recipe_key(recipe: dict[str, Any]) -> str:
    """Short hash of a resolved recipe without its seed and run directory (same settings, same key)."""
    stripped = {k: v for k, v in recipe.items() if k not in ("seed", "logging")}
    blob = json.dumps(stripped, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:8]


def run_dir_for(root: Path, arm: Arm, budget: dict[str, Any], seed: int) -> Path:
    return root / f"{arm.name}-{recipe_key(resolved_recipe(arm, budget, seed))}" / f"seed{seed}"


# ---- running --------------------------------------------------------------------------------------------


def run_arm(arm: Arm, budget: dict[str, Any], seed: int, root: Path, nice: int = 15) -> Path:
    """Train one (arm, seed) unless its run directory already holds a finished run; returns the directory."""
    run_dir = run_dir_for(root, arm, budget, seed)
    if (run_dir / "done.json").exists():
        print(f"[exp] {arm.name} seed {seed}: done already ({run_dir})", flush=True)
        return run_dir
    if run_dir.exists():
        shutil.rmtree(run_dir)  # an unfinished run: start it again from scratch
    run_dir.mkdir(parents=True)
    recipe = resolved_recipe(arm, budget, seed)
    recipe["logging"] = merge(recipe.get("logging") or {}, {"run_dir": str(run_dir), "tensorboard": False})
    recipe_path = run_dir / "arm.yaml"
    import yaml

    recipe_path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    for plugin in _local_files(recipe):
        shutil.copy(REPO / "experiments" / plugin, run_dir / plugin)
    cmd = ["nice", "-n", str(nice), sys.executable, "-m", "rlvr.cli", "train", str(recipe_path)]
    print(f"[exp] {arm.name} seed {seed}: {' '.join(cmd)}", flush=True)
    t0 = time.monotonic()
    with open(run_dir / "console.log", "w") as log:
        rc = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=_env())
    wall = time.monotonic() - t0
    steps = recipe["train"]["steps"]
    last = max((int(r.get("step", -1)) for r in read_metrics(run_dir)), default=-1) if rc == 0 else -1
    if rc != 0 or last != steps:  # a run stopped by SIGTERM exits 0 after a checkpoint: not finished
        tail = (run_dir / "console.log").read_text().splitlines()[-5:]
        raise SystemExit(
            f"[exp] {arm.name} seed {seed} did not finish (exit {rc}, last step {last} of {steps}) in "
            f"{run_dir}:\n" + "\n".join(tail)
        )
    (run_dir / "done.json").write_text(json.dumps({"wall_s": wall, "arm": arm.name, "seed": seed}))
    print(f"[exp] {arm.name} seed {seed}: {wall:.0f}s", flush=True)
    return run_dir


def _local_files(recipe: dict[str, Any]) -> list[str]:
    """Reward files of this directory that the recipe names as `file.py:fn` (copied next to the recipe)."""
    terms = (recipe.get("rewards") or {}).get("terms") or []
    return sorted({t["fn"].split(":")[0] for t in terms if ".py:" in t.get("fn", "")})


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


# ---- reading runs ---------------------------------------------------------------------------------------


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The rows of a run's metrics.jsonl."""
    path = run_dir / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def series(rows: Sequence[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    """(steps, values) of the rows that carry `key` (finite values only)."""
    steps, values = [], []
    for row in rows:
        value = row.get(key)
        if isinstance(value, int | float) and math.isfinite(value):
            steps.append(int(row.get("step", len(steps))))
            values.append(float(value))
    return steps, values


def wall_seconds(run_dir: Path) -> float:
    done = run_dir / "done.json"
    return float(json.loads(done.read_text())["wall_s"]) if done.exists() else float("nan")


# A summary turns a run's metric rows into one number: `final` (the last logged value), `last_mean:N` (mean
# of the last N logged values), `mean` (all values), `sd` (sd over the steps: steadiness), `at:STEP`.
def summarise(rows: Sequence[dict[str, Any]], key: str, how: str) -> float:
    steps, values = series(rows, key)
    if not values:
        return float("nan")
    kind, _, arg = how.partition(":")
    if kind == "final":
        return values[-1]
    if kind == "last_mean":
        tail = values[-int(arg) :]
        return sum(tail) / len(tail)
    if kind == "mean":
        return sum(values) / len(values)
    if kind == "sd":
        return stdev(values)
    if kind == "at":
        return dict(zip(steps, values)).get(int(arg), float("nan"))
    raise ValueError(f"unknown summary {how!r}")


def stdev(values: Sequence[float]) -> float:
    """Sample standard deviation (n - 1); 0 for a single value."""
    values = [v for v in values if math.isfinite(v)]
    if len(values) < 2:
        return 0.0
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return float("nan"), float("nan")
    return sum(finite) / len(finite), stdev(finite)


@dataclass(frozen=True)
class Metric:
    """One reported figure: a metrics.jsonl key summarised per run, or a function of the run's rows."""

    label: str
    key: str
    how: str = "final"
    fn: Callable[[Sequence[dict[str, Any]]], float] | None = None

    def value(self, rows: Sequence[dict[str, Any]]) -> float:
        return self.fn(rows) if self.fn is not None else summarise(rows, self.key, self.how)


@dataclass(frozen=True)
class Comparison:
    """A method (or several) against a baseline, with the budget they share and the figures reported."""

    name: str
    title: str
    baseline: Arm
    methods: tuple[Arm, ...]
    budget: dict[str, Any]
    metrics: tuple[Metric, ...]
    curves: tuple[tuple[str, str], ...]  # (metrics.jsonl key, panel title)
    # Keys computed from each metrics row (row -> value or None), usable in metrics and curves.
    derived: tuple[tuple[str, Callable[[dict[str, Any]], float | None]], ...] = ()

    @property
    def arms(self) -> tuple[Arm, ...]:
        return (self.baseline, *self.methods)


def collect(comp: Comparison, seeds: Sequence[int], root: Path) -> dict[str, Any]:
    """Per-seed values, mean ± sd, curves and wall time of every arm whose runs exist."""
    out: dict[str, Any] = {
        "comparison": comp.name,
        "title": comp.title,
        "baseline": comp.baseline.name,
        "steps": comp.budget["train"]["steps"],
        "budget": comp.budget,
        "arms": {},
    }
    for arm in comp.arms:
        dirs = [run_dir_for(root, arm, comp.budget, s) for s in seeds]
        done = [(s, d) for s, d in zip(seeds, dirs) if (d / "done.json").exists()]
        if not done:
            continue
        runs = {s: with_derived(read_metrics(d), comp.derived) for s, d in done}
        per_seed = {m.label: {str(s): m.value(rows) for s, rows in runs.items()} for m in comp.metrics}
        summary = {
            label: dict(zip(("mean", "sd"), mean_sd(list(v.values())))) for label, v in per_seed.items()
        }
        curves = {key: _mean_curve([series(rows, key) for rows in runs.values()]) for key, _ in comp.curves}
        walls = [wall_seconds(d) for _, d in done]
        out["arms"][arm.name] = {
            "recipe": arm.recipe,
            "overlay": arm.overlay,
            "seeds": [s for s, _ in done],
            "per_seed": per_seed,
            "summary": summary,
            "curves": curves,
            "wall_s_mean": sum(walls) / len(walls),
        }
    base = out["arms"].get(comp.baseline.name)
    for name, arm in out["arms"].items():
        if base is not None and name != comp.baseline.name:
            arm["paired_diff"] = paired_diff(base["per_seed"], arm["per_seed"])
    return out


def paired_diff(base: dict[str, dict[str, float]], method: dict[str, dict[str, float]]) -> dict[str, Any]:
    """Method minus baseline per seed (the arms of one seed share the sampling seed, so early steps see the
    same prompts and much of the run-to-run noise cancels), with its mean and sd over the seeds both ran."""
    out = {}
    for label, values in method.items():
        diffs = {s: v - base[label][s] for s, v in values.items() if s in base.get(label, {})}
        mean, sd = mean_sd(list(diffs.values()))
        out[label] = {"per_seed": diffs, "mean": mean, "sd": sd, "n": len(diffs)}
    return out


def with_derived(
    rows: list[dict[str, Any]], derived: Sequence[tuple[str, Callable[[dict[str, Any]], float | None]]]
) -> list[dict[str, Any]]:
    """The rows with each derived key added where its function gives a value."""
    out = []
    for row in rows:
        extra = {key: fn(row) for key, fn in derived}
        out.append({**row, **{k: v for k, v in extra.items() if v is not None}})
    return out


def _mean_curve(runs: Sequence[tuple[list[int], list[float]]]) -> dict[str, list[float]]:
    """Mean and sd per step over the runs that logged that step."""
    by_step: dict[int, list[float]] = {}
    for steps, values in runs:
        for s, v in zip(steps, values):
            by_step.setdefault(s, []).append(v)
    steps = sorted(by_step)
    return {
        "step": steps,
        "mean": [mean_sd(by_step[s])[0] for s in steps],
        "sd": [mean_sd(by_step[s])[1] for s in steps],
    }


# ---- tables and plots -----------------------------------------------------------------------------------


def fmt(mean: float | None, sd: float | None, sign: bool = False) -> str:
    """`mean ± sd`; "n/a" for a missing value (NaN here, None once read back from the results JSON)."""
    if mean is None or not math.isfinite(mean):
        return "n/a"
    sd = math.nan if sd is None else sd
    digits = 3 if abs(mean) < 10 else 1
    return f"{mean:{'+' if sign else ''}.{digits}f} ± {sd:.{digits}f}"


def table_rows(result: dict[str, Any]) -> list[list[str]]:
    """Rows (method, metric, baseline and method mean ± sd, paired difference, seeds, steps, wall) of a comparison."""
    arms = result["arms"]
    base = arms.get(result["baseline"])
    rows = []
    for name, arm in arms.items():
        if name == result["baseline"]:
            continue
        for label, stats in arm["summary"].items():
            b = base["summary"][label] if base else {"mean": float("nan"), "sd": float("nan")}
            d = arm.get("paired_diff", {}).get(label, {"mean": float("nan"), "sd": float("nan")})
            seeds = f"{len(base['seeds']) if base else 0} / {len(arm['seeds'])}"
            wall = f"{(base or arm)['wall_s_mean'] / 60:.1f} / {arm['wall_s_mean'] / 60:.1f} min"
            rows.append(
                [
                    name,
                    label,
                    fmt(b["mean"], b["sd"]),
                    fmt(stats["mean"], stats["sd"]),
                    fmt(d["mean"], d["sd"], sign=True),
                    seeds,
                    str(result["steps"]),
                    wall,
                ]
            )
    return rows


TABLE_HEADER = [
    "method",
    "metric",
    "baseline",
    "method",
    "paired diff",
    "seeds (base / method)",
    "steps",
    "wall / run",
]


def markdown_table(result: dict[str, Any]) -> str:
    header = [*TABLE_HEADER]
    header[2] = f"{result['baseline']} mean ± sd"
    header[3] = "method mean ± sd"
    header[4] = "method − baseline, same seed"
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(result)]
    return "\n".join(lines)


def plot(result: dict[str, Any], curves: Sequence[tuple[str, str]], path: Path) -> Path:
    """One panel per curve key: each arm's mean over seeds with a ±1 sd band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(4.2 * len(curves), 3.2), squeeze=False)
    for ax, (key, title) in zip(axes[0], curves):
        for name, arm in result["arms"].items():
            c = arm["curves"].get(key) or {}
            if not c.get("step"):
                continue
            lo = [m - s for m, s in zip(c["mean"], c["sd"])]
            hi = [m + s for m, s in zip(c["mean"], c["sd"])]
            marker = "o" if len(c["step"]) <= 6 else None
            (line,) = ax.plot(c["step"], c["mean"], label=f"{name} (n={len(arm['seeds'])})", marker=marker)
            ax.fill_between(c["step"], lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(result["title"], fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def write_results(result: dict[str, Any], extra: dict[str, Any] | None = None) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    if extra:
        result = {**result, **extra}
    path = RESULTS_DIR / f"{result['comparison']}.json"
    text = json.dumps(finite(result), indent=1, sort_keys=False, default=str, allow_nan=False)
    path.write_text(text + "\n")
    return path


def finite(value: Any) -> Any:
    """`value` with every non-finite float (a missing baseline's NaN) as None: strict JSON has no NaN."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


# ---- command line ---------------------------------------------------------------------------------------


def parse_args(description: str, argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--seeds", type=int, default=3, help="seeds per arm (0..N-1)")
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="where run directories live")
    parser.add_argument(
        "--aggregate-only", action="store_true", help="do not train: rebuild numbers and plots from the runs"
    )
    parser.add_argument("--dry-run", action="store_true", help="print each arm's resolved recipe and exit")
    parser.add_argument("--arms", nargs="*", default=None, help="train only these arms (default: all)")
    return parser.parse_args(argv)


def main(
    comp: Comparison,
    argv: Sequence[str] | None = None,
    extra: Callable[[], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Train missing runs (seed-major, one at a time), then aggregate, write the JSON and the plot."""
    args = parse_args(comp.title, argv)
    seeds = list(range(args.seeds))
    if args.dry_run:
        import yaml

        for arm in comp.arms:
            print(f"# {arm.name} -> {run_dir_for(args.root, arm, comp.budget, 0)}")
            print(yaml.safe_dump(resolved_recipe(arm, comp.budget, 0), sort_keys=False))
        return {}
    if not args.aggregate_only:
        chosen = [a for a in comp.arms if args.arms is None or a.name in args.arms]
        for seed in seeds:
            for arm in chosen:
                run_arm(arm, comp.budget, seed, args.root)
    result = collect(comp, seeds, args.root)
    path = write_results(result, extra() if extra else None)
    png = plot(result, comp.curves, PLOTS_DIR / f"{comp.name}.png")
    print(markdown_table(result))
    print(f"[exp] wrote {path.relative_to(REPO)} and {png.relative_to(REPO)}")
    return result
