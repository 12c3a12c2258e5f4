"""Progress lines of long phases: ETA and size formatting, the checkpoint-write line, the eval-pass line."""

from __future__ import annotations

from types import SimpleNamespace

from rlvr.checkpoint.manager import CheckpointManager
from rlvr.eval.runner import evaluate_prompts
from rlvr.progress import duration, eta, size


def test_formats():
    assert duration(42.4) == "42s" and duration(185) == "3m05s" and duration(3720) == "1h02m"
    assert eta(0, 10, 5.0) == "ETA ?"
    assert eta(100, 900, 30.0) == "ETA 4m00s"  # 800 steps left at 0.3 s each
    assert size(1_620_000_000) == "1.62 GB" and size(512e6) == "512 MB" and size(10) == "10 B"


def test_checkpoint_write_prints_size_and_seconds(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("RLVR_PROGRESS", raising=False)
    manager = CheckpointManager(tmp_path)
    staged = manager.stage(3)
    (staged / "weights.bin").write_bytes(b"x" * 2000)
    manager.commit(staged, 3)
    err = capsys.readouterr().err
    assert "step_000003" in err and "2 kB in " in err and err.count("\n") == 1
    monkeypatch.setenv("RLVR_PROGRESS", "0")
    staged = manager.stage(4)
    manager.commit(staged, 4)
    assert capsys.readouterr().err == ""


class _Engine:
    def generate(self, prompt_ids, *, n, **_):
        return [[SimpleNamespace(text="42", token_ids=[1, 2]) for _ in range(n)] for _ in prompt_ids]


class _Scorer:
    def score(self, texts, rows, lengths):
        return [SimpleNamespace(correct=True, extracted="42") for _ in texts], {"reward/errors": 0.0}


def test_eval_pass_logs_one_line_with_count_and_time():
    lines: list[str] = []
    rows = [{"id": i, "prompt": "q", "answer": "42"} for i in range(3)]
    evaluate_prompts(
        _Engine(),
        _Scorer(),
        rows,
        [[1]] * 3,
        samples_per_prompt=2,
        temperature=1.0,
        max_tokens=4,
        log=lines.append,
    )
    assert len(lines) == 1 and lines[0].startswith("eval: 3 prompts x 2 in ") and "accuracy 1.000" in lines[0]
