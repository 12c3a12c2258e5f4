"""`rlvr eval` end to end on a random tiny model: real vLLM engine, real reward sandbox, eval.json/eval.md."""

from __future__ import annotations

import importlib.util
import json

import pytest

from rlvr.commands import eval as eval_cmd

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        importlib.util.find_spec("rlvr.data.loaders") is None, reason="rlvr.data.loaders not available yet"
    ),
]


def test_eval_end_to_end_on_random_tiny_model(tmp_path, parse_args, capsys):
    from rlvr.data.synthetic import generate, write_jsonl
    from rlvr.tiny.model import init_random_model

    model = init_random_model(tmp_path / "m")
    rows = [p.row() for p in generate(4, seed=3)]
    data = write_jsonl(rows, tmp_path / "four.jsonl")
    argv = [str(model), "--data", str(data), "-k", "2", "--temperature", "1.0", "--max-tokens", "24"]
    argv += ["--instruction", "boxed"]
    assert eval_cmd.run(parse_args(eval_cmd, argv)) == 0

    out = model / "eval-four"
    report = json.loads((out / "eval.json").read_text())
    metrics = report["metrics"]
    for key in ("pass@1", "pass@2", "maj@2", "avg@2"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert metrics["pass@2"] >= metrics["pass@1"]
    assert report["meta"]["prompts"] == 4 and report["meta"]["samples_per_prompt"] == 2
    assert report["meta"]["rewards"] == ["math"]
    assert report["meta"]["instruction"] == eval_cmd.INSTRUCTIONS["boxed"]
    md = (out / "eval.md").read_text()
    assert "pass@2" in md
    assert "pass@2" in capsys.readouterr().out  # the markdown table is printed
