"""rlvr plot: synthetic metrics.jsonl -> readable PNG curves; clear errors otherwise."""

from __future__ import annotations

import argparse
import json
import math
import random

import pytest

from rlvr.plot import PANELS, PlotError, add_arguments, panel_keys, plot_run, read_metrics, run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def write_synthetic_run(run_dir, steps: int = 60) -> None:
    """A run that crashed after step 40, resumed from step 35, and logged eval every 10 steps."""
    rng = random.Random(0)
    lines = []

    def train_record(step: int, offset: float = 0.0) -> dict:
        progress = step / steps
        acc = min(1.0, 0.2 + 0.6 * progress + rng.gauss(0, 0.05))
        return {
            "step": step,
            "time": 3.0 * step,
            "reward/mean": acc + offset,
            "reward/std": 0.3,
            "accuracy/mean": acc,
            "entropy/mean": 1.2 * math.exp(-2 * progress) + rng.gauss(0, 0.02),
            "response_length/mean": 120 - 40 * progress + rng.gauss(0, 3),
            "response_length/correct_mean": 100 - 30 * progress,
            "response_length/wrong_mean": 140 - 20 * progress,
            "kl/mean": 0.01 * progress,
            "loss/policy": rng.gauss(0, 0.01),
            "time/step_s": 3.0,
        }

    for step in range(1, 41):
        lines.append(json.dumps(train_record(step, offset=5.0 if step > 35 else 0.0)))
    lines.append('{"step": 41, "reward/me')  # torn by the crash; the resumed run appends after it
    for step in range(36, steps + 1):
        lines.append(json.dumps(train_record(step)))
        if step % 10 == 0:
            lines.append(
                json.dumps({"step": step, "eval/accuracy": 0.15 + 0.6 * step / steps, "eval/pass@4": 0.9})
            )
    lines.append(json.dumps({"step": steps, "kl/mean": "nan"}))  # the logger writes non-finite as str
    (run_dir / "metrics.jsonl").write_text("\n".join(lines) + "\n")


def test_plot_run_writes_readable_pngs(tmp_path):
    write_synthetic_run(tmp_path)
    paths = plot_run(tmp_path)
    names = [p.name for p in paths]
    assert names == [
        "curves.png",
        "reward.png",
        "accuracy.png",
        "entropy.png",
        "response_length.png",
        "kl.png",
        "loss.png",
    ]
    for path in paths:
        data = path.read_bytes()
        assert data.startswith(PNG_MAGIC)
        assert len(data) > 15_000, f"{path.name} looks blank ({len(data)} bytes)"
    assert paths[0].stat().st_size > paths[1].stat().st_size
    assert all(p.parent == tmp_path / "plots" for p in paths)


def test_resume_overlap_keeps_last_value_and_skips_torn_line(tmp_path, capsys):
    write_synthetic_run(tmp_path)
    series = read_metrics(tmp_path / "metrics.jsonl")
    steps = [s for s, _ in series["reward/mean"]]
    assert steps == list(range(1, 61))
    assert max(v for _, v in series["reward/mean"]) < 2.0  # the superseded +5 offsets are gone
    assert [s for s, _ in series["eval/accuracy"]] == [40, 50, 60]
    assert series["kl/mean"][-1][1] == pytest.approx(0.01)  # "nan" string ignored
    assert "time" not in series
    assert "skipped 1 malformed" in capsys.readouterr().err


def test_absent_metrics_are_skipped(tmp_path):
    (tmp_path / "metrics.jsonl").write_text(
        "".join(json.dumps({"step": s, "reward/mean": s / 10}) + "\n" for s in range(5))
    )
    assert [p.name for p in plot_run(tmp_path, tmp_path / "out")] == ["curves.png", "reward.png"]


def test_panel_selection_excludes_spread_stats():
    reward = next(p for p in PANELS if p.name == "reward")
    keys = ["reward/std", "reward/mean", "reward/format", "reward/max", "accuracy/mean"]
    assert panel_keys(reward, keys) == ["reward/mean", "reward/format"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "not found"),
        ("", "no metric records"),
        ("\n\n", "no metric records"),
        ('{"time": 1.0, "reward/mean": 0.1}\n', "no metric records"),
        ('{"step": 1, "foo/bar": 1.0}\n', "no plottable metrics"),
    ],
)
def test_clear_errors(tmp_path, content, message):
    if content is not None:
        (tmp_path / "metrics.jsonl").write_text(content)
    with pytest.raises(PlotError, match=message):
        plot_run(tmp_path)


def test_cli_entry_points(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert run(parser.parse_args([str(tmp_path)])) == 1
    assert "rlvr plot: error:" in capsys.readouterr().err
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "kl/mean": 0.1}\n{"step": 2, "kl/mean": 0.2}\n')
    assert run(parser.parse_args([str(tmp_path), "--out", str(tmp_path / "p")])) == 0
    assert str(tmp_path / "p" / "curves.png") in capsys.readouterr().out
