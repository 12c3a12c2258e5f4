"""eval.json / eval.md writing."""

from __future__ import annotations

import json

from rlvr.eval import compute_eval_metrics, read_eval_report, write_eval_report

RECORDS = [
    {
        "prompt_id": "a",
        "fields": {"level": 1},
        "samples": [{"correct": True, "answer": "1", "length": 5}] * 2,
    },
    {
        "prompt_id": "b",
        "fields": {"level": 5},
        "samples": [{"correct": False, "answer": None, "length": 9}] * 2,
    },
]


def test_write_and_read_report(tmp_path):
    result = compute_eval_metrics(RECORDS)
    json_path, md_path = write_eval_report(
        tmp_path / "ckpt", result, meta={"checkpoint": "runs/x/step_000010", "dataset": "gsm8k"}
    )
    assert json_path.name == "eval.json" and md_path.name == "eval.md"
    loaded = read_eval_report(tmp_path / "ckpt")
    assert loaded["metrics"]["pass@1"] == 0.5
    assert loaded["meta"]["dataset"] == "gsm8k"
    assert set(loaded["breakdown"]["level"]) == {"1", "5"}
    text = md_path.read_text()
    assert "## By level" in text and "- checkpoint: `runs/x/step_000010`" in text
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["eval.json", "eval.md"]


def test_rewrite_replaces_previous_report(tmp_path):
    write_eval_report(tmp_path, compute_eval_metrics(RECORDS))
    write_eval_report(tmp_path, compute_eval_metrics(RECORDS[:1]))
    assert json.loads((tmp_path / "eval.json").read_text())["metrics"]["num_prompts"] == 1
