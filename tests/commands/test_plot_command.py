"""`rlvr plot RUN_DIR`: writes PNGs and prints their paths; a run without metrics is a user error."""

from __future__ import annotations

import json

import pytest

from rlvr.cli import is_user_error
from rlvr.commands import plot
from rlvr.plot import PlotError


def test_plot_prints_png_paths(tmp_path, parse_args, capsys):
    lines = [{"step": s, "reward/mean": s / 10, "eval/accuracy": s / 20} for s in range(1, 6)]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    out = tmp_path / "figs"
    assert plot.run(parse_args(plot, [str(tmp_path), "--out", str(out)])) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(out / "curves.png"), str(out / "reward.png"), str(out / "accuracy.png")]
    for path in printed:
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_plot_default_out_is_run_plots(tmp_path, parse_args, capsys):
    (tmp_path / "metrics.jsonl").write_text(json.dumps({"step": 1, "reward/mean": 0.5}) + "\n")
    plot.run(parse_args(plot, [str(tmp_path)]))
    assert capsys.readouterr().out.split()[0] == str(tmp_path / "plots" / "curves.png")


def test_plot_without_metrics_is_a_user_error(tmp_path, parse_args):
    with pytest.raises(PlotError) as info:
        plot.run(parse_args(plot, [str(tmp_path)]))
    assert is_user_error(info.value)
