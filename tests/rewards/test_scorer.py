"""RewardsConfig -> RewardScorer end to end: built-in, file-path and import-path rewards, contracts, metrics."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from rlvr.config.reward import RewardsConfig
from rlvr.reward.sandbox import VerifierPool
from rlvr.reward.scorer import RewardScorer, ScorerTerm
from rlvr.reward.types import RewardError

HERE = Path(__file__).parent
BROKEN = "broken_rewards.py"

MY_REWARD = '''
from rlvr.reward.types import RewardResult

def concise(completion, *, answer, max_chars=50, **row):
    """1.0 when the answer appears and the response is short."""
    ok = str(answer) in completion and len(completion) <= max_chars
    return RewardResult(score=float(ok), correct=ok, extracted=str(answer) if ok else None)
'''

PKG_REWARD = """
def says_answer(completion, *, answer, bonus=0.0, **row):
    return (1.0 if str(answer) in completion else 0.0) + bonus
"""


def test_file_and_import_path_rewards_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recipe_dir = tmp_path / "recipe"
    recipe_dir.mkdir()
    (recipe_dir / "my_reward.py").write_text(MY_REWARD)
    pkg = tmp_path / "site" / "mypkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "scoring.py").write_text(PKG_REWARD)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    # Run from elsewhere: the file path must resolve against the recipe directory, not the cwd.
    monkeypatch.chdir(tmp_path)
    cfg = RewardsConfig.model_validate(
        {
            "wrong_score": -1.0,
            "terms": [
                {"fn": "my_reward.py:concise", "data_source": "short", "kwargs": {"max_chars": 20}},
                {"fn": "mypkg.scoring:says_answer", "data_source": ["plain"], "kwargs": {"bonus": 0.5}},
                {"fn": "math", "data_source": "math"},
                {"fn": "format", "kwargs": {"think": False}, "weight": 0.25},
            ],
            "sandbox": {"workers": 2, "timeout_s": 5},
        }
    )
    rows = [
        {"answer": "7", "data_source": "short"},
        {"answer": "7", "data_source": "short"},
        {"answer": "8", "data_source": "plain"},
        {"answer": "\\frac{1}{2}", "data_source": "math"},
    ]
    completions = ["it is \\boxed{7}", "a long response that ends in \\boxed{7}", "8 it is", "\\boxed{0.5}"]
    with RewardScorer.from_config(cfg, base_dir=recipe_dir) as scorer:
        scorer.check_contract(rows)
        results, metrics = scorer.score(completions, rows)
    assert [r.correct for r in results] == [True, False, True, True]
    # primary (+1 / -1) + format 0.25 * (0 or -1); the import-path float 1.5 > 0 is a correct verdict.
    assert [r.score for r in results] == [1.0, -1.0, 0.75, 1.0]
    assert results[0].extracted == "7"
    assert metrics["reward/accuracy"] == 0.75
    assert metrics["reward/format_error_rate"] == 0.25
    assert metrics["reward/errors"] == 0 and metrics["reward/timeouts"] == 0
    assert metrics["reward/term/format"] == -0.25
    assert metrics["reward/term/mypkg.scoring:says_answer"] == 1.5
    assert math.isclose(metrics["reward/mean"], sum(r.score for r in results) / 4)


@pytest.fixture(scope="module")
def shared_pool():
    with VerifierPool(
        workers=2, timeout_s=5, max_error_fraction=0.5, preload=("math",), base_dir=HERE
    ) as pool:
        yield pool


def scorer(*terms: ScorerTerm, pool: VerifierPool, **kw) -> RewardScorer:
    return RewardScorer(list(terms), pool=pool, base_dir=HERE, **kw)


ROWS = [{"answer": "3", "difficulty": 1}, {"answer": "4", "difficulty": 2}]


@pytest.mark.parametrize(
    ("fn", "problem"),
    [
        ("wrong_type", r"returned str; it must return a float or a RewardResult"),
        ("returns_bool", r"returned bool"),
        ("returns_list", r"returned list"),
        ("raises", r"raised ValueError: boom in user code"),
        ("nan", r"non-finite score \(nan\)"),
        ("inf", r"non-finite score \(-inf\)"),
    ],
)
def test_broken_reward_fails_contract_naming_function(shared_pool, fn: str, problem: str) -> None:
    s = scorer(ScorerTerm(f"{BROKEN}:{fn}"), pool=shared_pool)
    with pytest.raises(
        RewardError, match=rf"reward {BROKEN}:{fn} failed the contract check on row 0: .*{problem}"
    ):
        s.check_contract(ROWS)


def test_row_fields_reach_the_reward(shared_pool) -> None:
    s = scorer(ScorerTerm(f"{BROKEN}:needs_field"), pool=shared_pool)
    s.check_contract(ROWS)
    with pytest.raises(RewardError, match=r"needs_field failed the contract check.*difficulty"):
        s.check_contract([{"answer": "3"}])


def module_level_reward(completion, *, answer, **row):
    return 1.0 if str(answer) in completion else 0.0


def test_unpicklable_rewards_are_refused_by_name(shared_pool) -> None:
    from rlvr.reward.registry import resolve_reward

    with pytest.raises(RewardError, match=r"reward .*<lambda> cannot be sent to the worker pool: .*lambda"):
        scorer(ScorerTerm(lambda c, *, answer, **r: 1.0), pool=shared_pool)
    closure = resolve_reward(f"{BROKEN}:closure", HERE)
    with pytest.raises(RewardError, match=r"_make_closure.<locals>.inner cannot be sent .*not picklable"):
        scorer(ScorerTerm(closure), pool=shared_pool)
    # The same closure named by its spec string is imported by the workers themselves, so it works.
    scorer(ScorerTerm(f"{BROKEN}:closure"), pool=shared_pool).check_contract(ROWS)


def test_module_level_function_works_programmatically(shared_pool) -> None:
    s = scorer(ScorerTerm(module_level_reward), pool=shared_pool)
    s.check_contract(ROWS)
    results, _ = s.score(["3", "5"], ROWS)
    assert [r.correct for r in results] == [True, False]


def test_resolution_errors_are_clear(shared_pool) -> None:
    with pytest.raises(
        RewardError, match=r"unknown reward 'maths'; registered rewards: .*format, gsm8k, math"
    ):
        scorer(ScorerTerm("maths"), pool=shared_pool)
    with pytest.raises(RewardError, match=r"reward file 'nope.py' not found"):
        scorer(ScorerTerm("nope.py:fn"), pool=shared_pool)
    with pytest.raises(RewardError, match=r"'missing' not found"):
        scorer(ScorerTerm(f"{BROKEN}:missing"), pool=shared_pool)
    with pytest.raises(
        RewardError, match=r"reward math has no parameter\(s\) \['thnk'\]; it accepts: .*think"
    ):
        scorer(ScorerTerm("math", kwargs={"thnk": True}), pool=shared_pool)
    with pytest.raises(RewardError, match="both primary"):
        scorer(ScorerTerm("math"), ScorerTerm("gsm8k"), pool=shared_pool)
    with pytest.raises(RewardError, match="no primary"):
        scorer(ScorerTerm("format"), pool=shared_pool)


def test_rows_without_a_primary_reward_or_answer_raise(shared_pool) -> None:
    s = scorer(ScorerTerm("math", data_source=["math"]), ScorerTerm("format"), pool=shared_pool)
    with pytest.raises(RewardError, match=r"no primary reward applies to row 0 \(data_source='gsm8k'\)"):
        s.score(["\\boxed{1}"], [{"answer": "1", "data_source": "gsm8k"}])
    with pytest.raises(RewardError, match=r"row 0 has no 'answer' field"):
        s.score(["\\boxed{1}"], [{"question": "q", "data_source": "math"}])
    with pytest.raises(RewardError, match="2 completions but 1 rows"):
        s.score(["a", "b"], [{"answer": "1"}])


def test_failures_score_wrong_and_are_counted(shared_pool) -> None:
    s = scorer(
        ScorerTerm(f"{BROKEN}:raises", data_source=["bad"]),
        ScorerTerm("math", data_source=["good"]),
        pool=shared_pool,
        wrong_score=-1.0,
    )
    rows = [{"answer": "1", "data_source": "bad"}] + [{"answer": "1", "data_source": "good"}] * 3
    results, metrics = s.score(["\\boxed{1}"] * 4, rows)
    assert [r.score for r in results] == [-1.0, 1.0, 1.0, 1.0]
    assert results[0].error and "boom" in results[0].error and not results[0].correct
    assert metrics["reward/errors"] == 1.0 and metrics["reward/accuracy"] == 0.75
    with pytest.raises(
        RewardError, match=r"3 of 4 items failed verification \(0 timeouts\); first error: .*boom"
    ):
        s.score(["\\boxed{1}"] * 4, [rows[0]] * 3 + [rows[1]])


def test_a_shaping_term_gets_response_tokens(shared_pool) -> None:
    s = scorer(
        ScorerTerm("math"),
        ScorerTerm("shaping_rewards.py:length_shaping", primary=False),
        pool=shared_pool,
        wrong_score=-1.0,
    )
    rows = [{"answer": "1"}] * 3
    results, _ = s.score(["\\boxed{1}", "\\boxed{1}", "\\boxed{2}"], rows, response_tokens=[0, 500, 250])
    assert [r.score for r in results] == pytest.approx([1.0, 0.5, -1.25])
    # Without lengths the shaping term errors (counted, scored 0), the verdict still counts.
    (result,), metrics = s.score(["\\boxed{1}"], rows[:1])
    assert "needs response_tokens" in result.error and result.score == 1.0 and metrics["reward/errors"] == 1


def test_readme_custom_reward_section_works_when_pasted(tmp_path: Path, shared_pool) -> None:
    yaml = pytest.importorskip("yaml")
    text = (HERE.parents[1] / "docs" / "custom_reward.md").read_text()
    python_block = text.split("```python\n", 1)[1].split("```", 1)[0]
    yaml_block = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "my_reward.py").write_text(python_block)
    cfg = RewardsConfig.model_validate(yaml.safe_load(yaml_block)["rewards"])
    s = RewardScorer.from_config(cfg, base_dir=tmp_path, pool=shared_pool)
    rows = [{"answer": "42", "data_source": "gsm8k"}] * 2
    s.check_contract(rows)
    results, metrics = s.score(["<think>6*7</think>\n#### 42", "#### 41"], rows)
    assert [(r.correct, r.score) for r in results] == [(True, 1.0), (False, -0.5)]
    assert metrics["reward/format_error_rate"] == 0.5
