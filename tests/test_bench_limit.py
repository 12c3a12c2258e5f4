"""The pure parts of bench/machine_limit.py: argument parsing, the micro-batch layout, reading a compare_trl
results.json and the efficiency arithmetic.

    .venv/bin/python -m pytest tests/test_bench_limit.py -q

No vLLM and no model runs: the benchmark itself is run by hand (`bench/machine_limit.py --help`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from bench_modules import load_bench

limit = load_bench("machine_limit")


def test_defaults_are_the_equal_work_settings_and_rlvrs_micro_batch_budget():
    from rlvr.config.sections import LearnerConfig

    args = limit._args([])
    assert args.model_list == ["tiny"]
    assert (args.prompts, args.samples, args.max_new_tokens, args.repeats) == (16, 8, 64, 5)
    assert args.micro_batch_tokens == LearnerConfig().micro_batch_tokens == 4096
    assert args.compare is None and not args.plain_sampling
    args = limit._args(["--models", "18m,tiny", "--micro-batch-tokens", "512", "--idle-max-wait", "0"])
    assert args.model_list == ["18m", "tiny"] and args.micro_batch_tokens == 512 and args.idle_max_wait == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--repeats", "0"], "--repeats must be >= 1, got 0"),
        (["--micro-batch-tokens", "-3"], "--micro-batch-tokens must be >= 1"),
        (["--models", "tiny,7b"], "unknown 7b"),
        (["--prompts", "x"], "invalid int value"),
        (["--idle-max-wait", "-1"], "--idle-max-wait must be >= 0"),
    ],
)
def test_bad_arguments_print_one_line_and_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        limit._args(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("bench/machine_limit.py: error:") and message in err


def test_micro_batches_are_longest_first_under_the_padded_budget():
    lengths = [10, 40, 20, 40, 5, 30, 100]
    batches = limit.micro_batches(lengths, 80)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))  # every sample once
    assert batches == [[6], [1, 3], [5, 2], [0, 4]]  # the over-long one alone; then longest first
    for b in batches:
        assert len(b) == 1 or len(b) * max(lengths[i] for i in b) <= 80
    assert limit.padded_tokens(lengths, batches) == 100 + 80 + 60 + 20
    assert limit.padded_tokens(lengths, [list(range(7))]) == 700  # one padded batch
    assert limit.micro_batches([], 10) == []
    with pytest.raises(ValueError, match="budget"):
        limit.micro_batches([1], 0)


def test_micro_batches_match_rlvrs_packer():
    from rlvr.batch import pack_micro_batches

    lengths = [(i * 37) % 61 + 20 for i in range(128)]
    for budget in (1, 64, 500, 4096, 10**6):
        assert limit.micro_batches(lengths, budget) == pack_micro_batches(lengths, budget, longest_first=True)


def _results(tmp_path: Path, phases: dict[str, float], step: float = 10.0) -> Path:
    stat = lambda v: {"median": v, "min": v, "max": v, "n": 3}  # noqa: E731
    results = {
        "settings": {"prompts": 16, "samples": 8, "max_new_tokens": 64},
        "models": {
            "tiny": {
                "rlvr": {
                    "summary": {"step_s": stat(step), "phases": {k: stat(v) for k, v in phases.items()}}
                },
                "trl": {"summary": {"step_s": stat(30.0), "phases": {}}},
            }
        },
    }
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    return path


def test_efficiency_is_limit_over_rlvr_per_phase(tmp_path):
    path = _results(tmp_path, {"generate": 4.0, "reward": 0.1, "logprobs": 1.0, "update": 3.0, "sync": 0.5})
    results = limit.load_compare(path)
    rlvr = limit.rlvr_figures(results, "tiny")
    assert rlvr == {"generate": 4.0, "update": 4.0, "step": 10.0}
    eff = limit.efficiency({"generate": 2.0, "update": 3.0, "step": 5.0, "update_layout": "micro"}, rlvr)
    assert eff == {"generate": 0.5, "update": 0.75, "step": 0.5}
    assert limit.rlvr_figures(results, "72m") is None  # not in the file


def test_missing_phases_are_nan_except_logprobs(tmp_path):
    rlvr = limit.rlvr_figures(limit.load_compare(_results(tmp_path, {"update": 2.0})), "tiny")
    assert math.isnan(rlvr["generate"]) and rlvr["update"] == 2.0 and rlvr["step"] == 10.0
    eff = limit.efficiency({"generate": 1.0, "update": 1.0, "step": 2.0}, rlvr)
    assert math.isnan(eff["generate"]) and eff["update"] == 0.5 and eff["step"] == 0.2


def test_settings_mismatch_names_the_differing_settings(tmp_path):
    results = limit.load_compare(_results(tmp_path, {}))
    assert limit.settings_mismatch(limit._args([]), results) == []
    assert limit.settings_mismatch(limit._args(["--max-new-tokens", "256"]), results) == [
        "max_new_tokens 64 there, 256 here"
    ]


def test_unusable_compare_files_raise_one_line(tmp_path):
    with pytest.raises(ValueError, match="cannot read it"):
        limit.load_compare(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not JSON"):
        limit.load_compare(bad)
    bad.write_text(json.dumps({"settings": {}}))
    with pytest.raises(ValueError, match="no 'models' table"):
        limit.load_compare(bad)


def test_a_bad_compare_file_exits_2_before_any_work(tmp_path, capsys):
    assert limit.main(["--compare", str(tmp_path / "missing.json"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot read it" in err
    assert not (tmp_path / "out").exists()
