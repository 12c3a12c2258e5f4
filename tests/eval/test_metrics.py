"""Evaluation metrics against hand-computed values."""

from __future__ import annotations

import json
from fractions import Fraction
from math import comb

import pytest

from rlvr.eval import compute_eval_metrics, default_ks, majority_vote, pass_at_k, render_markdown


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (4, 1, 1, 0.25),  # 1 - C(3,1)/C(4,1) = 1 - 3/4
        (4, 1, 2, 0.5),  # 1 - C(3,2)/C(4,2) = 1 - 3/6
        (4, 2, 2, 5 / 6),  # 1 - C(2,2)/C(4,2) = 1 - 1/6
        (5, 2, 3, 0.9),  # 1 - C(3,3)/C(5,3) = 1 - 1/10
        (10, 3, 4, 5 / 6),  # 1 - C(7,4)/C(10,4) = 1 - 35/210
        (4, 1, 4, 1.0),  # n = k with one correct: the full set always contains it
        (4, 0, 4, 0.0),  # n = k, c = 0
        (8, 0, 1, 0.0),  # c = 0
        (8, 0, 8, 0.0),
        (8, 8, 1, 1.0),  # c = n
        (8, 8, 8, 1.0),
        (1, 1, 1, 1.0),
        (1, 0, 1, 0.0),
        (16, 4, 1, 0.25),  # pass@1 is always c / n
    ],
)
def test_pass_at_k_hand_values(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_k_matches_exact_binomials_for_large_n():
    for n in (64, 200):
        for c in (0, 1, 3, n // 2, n - 1, n):
            for k in (1, 2, 7, 32, n):
                exact = 1 - Fraction(comb(n - c, k), comb(n, k))
                assert pass_at_k(n, c, k) == pytest.approx(float(exact), abs=1e-9)


def test_pass_at_k_rejects_bad_arguments():
    for n, c, k in [(4, 5, 1), (4, -1, 1), (4, 1, 0), (4, 1, 5)]:
        with pytest.raises(ValueError):
            pass_at_k(n, c, k)


def test_default_ks():
    assert default_ks(1) == [1]
    assert default_ks(4) == [1, 2, 4]
    assert default_ks(6) == [1, 2, 4, 6]
    assert default_ks(16) == [1, 2, 4, 8, 16]


def sample(answer, correct, length=10):
    return {"answer": answer, "correct": correct, "length": length}


def test_majority_vote_ties_go_to_earliest_answer():
    samples = [
        sample("A", False),
        sample("B", True),
        sample("B", True),
        sample("A", False),
        sample(None, False),
    ]
    assert majority_vote(samples) == ("A", False)
    assert majority_vote(samples[1:]) == ("B", True)


def test_majority_vote_none_never_wins():
    assert majority_vote([sample(None, False)] * 3 + [sample("7", True)]) == ("7", True)
    assert majority_vote([sample(None, False)] * 3) == (None, False)


def test_majority_vote_strips_answers():
    assert majority_vote([sample("1", False), sample(" 42", True), sample("42 ", True)]) == ("42", True)


RECORDS = [
    {
        "prompt_id": "p1",
        "fields": {"difficulty": "easy", "subject": "algebra"},
        "samples": [
            sample("1", True, 10),
            sample("2", False, 30),
            sample("2", False, 30),
            sample("3", False, 50),
        ],
    },
    {
        "prompt_id": "p2",
        "fields": {"difficulty": "hard"},
        "samples": [sample(None, False, 100)] * 4,
    },
    {
        "prompt_id": "p3",
        "fields": {"difficulty": "easy"},
        "samples": [sample("7", True, 20)] * 4,
    },
]


def test_compute_eval_metrics_aggregate():
    result = compute_eval_metrics(RECORDS)
    assert result["n"] == 4 and result["ks"] == [1, 2, 4]
    m = result["metrics"]
    assert m["num_prompts"] == 3 and m["num_samples"] == 12
    assert m["pass@1"] == pytest.approx((0.25 + 0 + 1) / 3)
    assert m["pass@2"] == pytest.approx((0.5 + 0 + 1) / 3)
    assert m["pass@4"] == pytest.approx(2 / 3)
    assert m["avg@4"] == pytest.approx((0.25 + 0 + 1) / 3)
    # p1: maj@1 = "1" (correct); maj@2 = tie "1"/"2" -> "1" earliest (correct); maj@4 = "2" (wrong).
    assert m["maj@1"] == pytest.approx(2 / 3)
    assert m["maj@2"] == pytest.approx(2 / 3)
    assert m["maj@4"] == pytest.approx(1 / 3)
    assert m["no_answer_rate"] == pytest.approx(4 / 12)
    assert m["length/correct_mean"] == pytest.approx((10 + 4 * 20) / 5)
    assert m["length/wrong_mean"] == pytest.approx((30 + 30 + 50 + 400) / 7)
    assert m["length/mean"] == pytest.approx((10 + 30 + 30 + 50 + 400 + 80) / 12)
    json.dumps(result, allow_nan=False)


def test_breakdown_by_present_fields_only():
    result = compute_eval_metrics(RECORDS)
    assert set(result["breakdown"]) == {"difficulty", "subject"}
    easy, hard = result["breakdown"]["difficulty"]["easy"], result["breakdown"]["difficulty"]["hard"]
    assert easy["num_prompts"] == 2 and hard["num_prompts"] == 1
    assert easy["pass@1"] == pytest.approx((0.25 + 1) / 2)
    assert easy["pass@4"] == 1.0
    assert hard["pass@4"] == 0.0 and hard["maj@4"] == 0.0
    assert hard["length/correct_mean"] is None
    subject = result["breakdown"]["subject"]
    assert set(subject) == {"algebra", "(missing)"}
    assert subject["(missing)"]["num_prompts"] == 2


def test_uneven_sample_counts_use_smallest_n_for_ks():
    records = [*RECORDS, {"prompt_id": "p4", "samples": [sample("5", True)] * 6}]
    result = compute_eval_metrics(records)
    assert result["n"] == 4 and result["n_max"] == 6 and result["ks"] == [1, 2, 4]
    assert result["metrics"]["pass@1"] == pytest.approx((0.25 + 0 + 1 + 1) / 4)


def test_explicit_ks_and_validation():
    assert compute_eval_metrics(RECORDS, ks=[2, 1])["ks"] == [1, 2]
    with pytest.raises(ValueError, match="k values"):
        compute_eval_metrics(RECORDS, ks=[8])
    with pytest.raises(ValueError, match="no evaluation records"):
        compute_eval_metrics([])
    with pytest.raises(ValueError, match="no samples"):
        compute_eval_metrics([{"prompt_id": "x", "samples": []}])
    with pytest.raises(ValueError, match="bool"):
        compute_eval_metrics([{"prompt_id": "x", "samples": [{"correct": 1.0, "answer": "1", "length": 3}]}])


def test_render_markdown_tables():
    text = render_markdown(compute_eval_metrics(RECORDS), title="GSM8K step 10")
    assert text.startswith("# GSM8K step 10\n")
    assert "| pass@1 | 0.4167 |" in text
    assert "| maj@4 | 0.3333 |" in text
    assert "## By difficulty" in text
    assert "| difficulty | prompts | pass@1 | pass@2 | pass@4 | avg@4 | maj@4 |" in text
    assert "| hard | 1 | 0.0000 | 0.0000 | 0.0000 | 0.0000 | 0.0000 | - | 100.0 |" in text
