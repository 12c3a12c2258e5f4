"""Pure-logic tests (no processes): config schema, extraction, normalisation, registry."""

from __future__ import annotations

import pickle
import subprocess
import sys

import pytest
from pydantic import ValidationError

from rewards.math_extract import extract_answer, extract_gold, last_boxed, normalize_answer, split_think
from rlvr.config.reward import RewardsConfig, RewardTerm, reward_spec_kind
from rlvr.reward.registry import list_rewards, register_reward
from rlvr.reward.types import RewardResult, coerce_result


def test_default_config_is_boxed_math_weight_one() -> None:
    cfg = RewardsConfig()
    assert [(t.fn, t.weight, t.kwargs) for t in cfg.terms] == [("math", 1.0, {})]
    assert (cfg.correct_score, cfg.wrong_score) == (1.0, 0.0)
    assert cfg.sandbox.workers >= 1 and cfg.sandbox.timeout_s > 0


@pytest.mark.parametrize(
    ("spec", "kind"),
    [
        ("math", "name"),
        ("my_pkg.rewards:fn", "import"),
        ("dir/my reward.py:fn", "file"),
        ("/abs/r.py:Cls.fn", "file"),
    ],
)
def test_spec_kinds(spec: str, kind: str) -> None:
    assert reward_spec_kind(spec) == kind


@pytest.mark.parametrize(
    "bad",
    [
        {"terms": [{"fn": "Math"}]},
        {"terms": [{"fn": "pkg.mod"}]},
        {"terms": [{"fn": "x.py"}]},
        {"terms": []},
        {"terms": [{"fn": "math", "kwargs": {"answer": 1}}]},
        {"terms": [{"fn": "math", "wieght": 2}]},
        {"sandbox": {"workers": 0}},
        {"sandbox": {"timeout_s": 0}},
        {"sandbox": {"max_error_fraction": 1.5}},
        {"correct_score": 0.0, "wrong_score": 0.0},
        {"name": "math"},
    ],
)
def test_config_rejects(bad: dict) -> None:
    with pytest.raises(ValidationError):
        RewardsConfig.model_validate(bad)


def test_data_source_accepts_one_or_many() -> None:
    assert RewardTerm(fn="math", data_source="gsm8k").data_source == ["gsm8k"]
    assert RewardTerm(fn="math", data_source=["a", "b"]).data_source == ["a", "b"]


def test_config_imports_without_torch_or_reward_code() -> None:
    code = (
        "import sys, rlvr.config.reward as r; r.RewardsConfig(); "
        "bad = [m for m in ('torch', 'vllm', 'ray', 'deepspeed', 'sympy', 'rewards.math') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\\boxed{a{b}c}", "a{b}c"),
        ("\\boxed{1} then \\boxed{2}", "2"),
        ("\\boxed {3}", "3"),
        ("\\boxed 4 is it", "4"),
        ("\\boxed{5", None),
        ("\\fbox{6}", "6"),
        ("none", None),
    ],
)
def test_last_boxed(text: str, expected: str | None) -> None:
    assert last_boxed(text) == expected


def test_extraction_styles_and_tail_cap() -> None:
    assert extract_answer("#### 5\n#### 6", style="gsm8k") == "6"
    assert extract_answer("Answer: \\boxed{7}", style="answer") == "7"
    assert extract_answer("Answer: 7\n#### 8", style="auto") == "8"
    assert extract_answer("\\boxed{1}" + "x" * 100, tail_chars=50) is None
    with pytest.raises(ValueError, match="unknown answer style 'latex'; known"):
        extract_answer("x", style="latex")
    assert split_think("<think>a</think>b</think>c") == "c"
    assert split_think("<think>a") is None


def test_gold_extraction() -> None:
    assert extract_gold("step\n#### 1,234") == ["1,234"]
    assert extract_gold("\\boxed{\\frac12}") == ["\\frac12"]
    assert extract_gold(["3", 4, ""]) == ["3", "4"]
    assert extract_gold(7) == ["7"]


@pytest.mark.parametrize(
    ("raw", "norm"),
    [
        ("\\dfrac{1}{2}", "\\frac{1}{2}"),
        ("\\frac12", "\\frac{1}{2}"),
        ("1,234,567", "1234567"),
        ("x = 5", "5"),
        ("5\\text{ cm}", "5"),
        ("30^\\circ", "30"),
        ("\\$4.50", "4.5"),
        ("12\\%", "12"),
        ("1\\,000", "1000"),
        ("\\left(1,2\\right)", "(1,2)"),
        ("6.02e23", "6.02\\times10^{23}"),
        ("\\text{(B)}", "(B)"),
        ("−3", "-3"),
    ],
)
def test_normalize(raw: str, norm: str) -> None:
    assert normalize_answer(raw) == norm


def test_result_pickles_and_coerces() -> None:
    r = RewardResult(score=1.0, correct=True, extracted="7")
    assert pickle.loads(pickle.dumps(r)) == r
    assert coerce_result(2, "f").score == 2.0 and coerce_result(-1.0, "f").correct is False
    with pytest.raises(TypeError, match="reward f returned bool"):
        coerce_result(True, "f")
    with pytest.raises(ValueError, match="non-finite"):
        coerce_result(RewardResult(score=float("nan")), "f")


def test_registry_names_and_conflicts() -> None:
    assert {"math", "gsm8k", "format"} <= set(list_rewards())
    with pytest.raises(ValueError, match="lower_snake_case"):
        register_reward("MyReward")
    with pytest.raises(ValueError, match="already registered"):
        register_reward("math")(lambda c, *, answer: 0.0)
