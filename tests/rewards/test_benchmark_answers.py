"""Benchmark-style answers graded through the trainer's reward path (`RewardScorer` over the sandbox pool).

* the labelled pairs of `benchmark_cases.py` (every class in docs/rewards.md, both directions);
* reference solutions of GSM8K-, MATH- and AIME-format files (written for these tests, in
  `fixtures/`), loaded through `rlvr.data.loaders`: all accepted against their own gold, all rejected
  against the gold of the next row.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from benchmark_cases import ALL_CASES, CLASSES, R1_PROMPT, THINK_IN_PROMPT

from rlvr.config.data import DatasetConfig
from rlvr.config.reward import RewardsConfig
from rlvr.data.loaders import load_dataset_rows
from rlvr.reward.sandbox import VerifierPool
from rlvr.reward.scorer import RewardScorer

FIXTURES = Path(__file__).with_name("fixtures")
SOLUTION_FIELD = {"gsm8k": "answer", "math": "solution", "aime": "solution"}
GSM8K_STYLE = "So we get"  # the one labelled case graded by the gsm8k reward (a `####` answer)


def _scorer(pool: VerifierPool, **kwargs: object) -> RewardScorer:
    """A scorer built from a recipe's `rewards` section, as the trainer builds it.

    Math-Verify gets a generous timeout: these tests are about verdicts, on a possibly loaded machine.
    """
    kwargs = {"timeout_s": 5, **kwargs}
    cfg = RewardsConfig.model_validate(
        {
            "terms": [
                {"fn": "math", "data_source": ["math", "aime"], "kwargs": kwargs},
                {"fn": "gsm8k", "data_source": "gsm8k", "kwargs": kwargs},
            ]
        }
    )
    return RewardScorer.from_config(cfg, pool=pool)


def test_labelled_suite_size_and_balance() -> None:
    assert len(ALL_CASES) >= 150
    for name, cases in CLASSES.items():
        labels = {expected for *_, expected in cases}
        assert labels == {True, False}, f"class {name} needs pairs in both directions"


@pytest.mark.parametrize("think", ["default", "off"])
def test_labelled_pairs_through_scorer(pool: VerifierPool, think: str) -> None:
    cases = [c for c in ALL_CASES if (c[1].get("think") == "off") == (think == "off")]
    scorer = _scorer(pool, **({"think": "off"} if think == "off" else {}))
    rows = [
        {"answer": gold, "data_source": "gsm8k" if comp.startswith(GSM8K_STYLE) else "math"}
        for _, _, comp, gold, _ in cases
    ]
    results, metrics = scorer.score([c[2] for c in cases], rows)
    wrong = [
        f"[{name}] {comp[-50:]!r} vs {gold!r}: expected {exp}, got {r.correct} (extracted {r.extracted!r})"
        for (name, _, comp, gold, exp), r in zip(cases, results)
        if r.correct != exp
    ]
    assert not wrong, f"{len(wrong)} of {len(cases)} labelled pairs wrong:\n" + "\n".join(wrong)
    assert metrics["reward/errors"] == 0 and metrics["reward/timeouts"] == 0
    assert metrics["reward/verify_timeouts"] == 0


def test_prompt_that_opens_think_needs_a_closed_block(pool: VerifierPool) -> None:
    rows = [{"answer": gold, "data_source": "math", "prompt": R1_PROMPT} for _, gold, _ in THINK_IN_PROMPT]
    results, metrics = _scorer(pool).score([c for c, _, _ in THINK_IN_PROMPT], rows)
    assert [r.correct for r in results] == [exp for *_, exp in THINK_IN_PROMPT]
    assert metrics["reward/format_error_rate"] == 2 / len(THINK_IN_PROMPT)  # unclosed block; no answer
    off, _ = _scorer(pool, think="off").score([THINK_IN_PROMPT[1][0]], rows[:1])
    assert off[0].correct  # the option turns it off


def _reference(fmt: str) -> tuple[list[str], list[dict]]:
    path = FIXTURES / f"{fmt}_sample.jsonl"
    raw = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows = load_dataset_rows(DatasetConfig(source=str(path), format=fmt, split="test"))
    assert len(rows) == len(raw) >= 10
    return [r[SOLUTION_FIELD[fmt]] for r in raw], rows


@pytest.mark.parametrize("fmt", ["gsm8k", "math", "aime"])
def test_reference_solutions_accepted_and_shifted_golds_rejected(pool: VerifierPool, fmt: str) -> None:
    solutions, rows = _reference(fmt)
    scorer = _scorer(pool)
    results, _ = scorer.score(solutions, rows)
    rejected = [(row["index"], row["answer"], r.extracted) for row, r in zip(rows, results) if not r.correct]
    assert not rejected, f"{fmt}: reference solutions graded wrong: {rejected}"
    shifted = [{**row, "answer": rows[(i + 1) % len(rows)]["answer"]} for i, row in enumerate(rows)]
    assert len({row["answer"] for row in rows}) == len(rows)
    results, _ = scorer.score(solutions, shifted)
    accepted = [(row["index"], row["answer"], r.extracted) for row, r in zip(shifted, results) if r.correct]
    assert not accepted, f"{fmt}: reference solutions accepted against another row's gold: {accepted}"
