"""Synthetic task: determinism, split hygiene, correctness of references, lengths, answer checker."""

from __future__ import annotations

import re

from rewards.math import math_reward
from rlvr.data.synthetic import LEVELS, canonical_split, make_problem, make_splits
from rlvr.tiny.sft import encode_example, render_prompt
from rlvr.tiny.tokenizer import build_tokenizer

STEP = re.compile(r"^(-?\d+)([+\-*])(\d+)=(-?\d+)$")


def test_same_seed_same_splits_and_no_overlap():
    a_train, a_test = make_splits(300, 60, seed=3)
    b_train, b_test = make_splits(300, 60, seed=3)
    assert [p.prompt for p in a_train] == [p.prompt for p in b_train]
    assert [p.prompt for p in a_test] == [p.prompt for p in b_test]
    assert not {p.expression for p in a_train} & {p.expression for p in a_test}  # in either style
    assert len({p.expression for p in a_train}) == 300
    other, _ = make_splits(300, 60, seed=4)
    assert [p.prompt for p in other] != [p.prompt for p in a_train]


def test_reference_chain_is_correct_arithmetic():
    import random

    rng = random.Random(0)
    for level in LEVELS:
        for _ in range(50):
            prob = make_problem(rng, level)
            *steps, last = prob.response.split("\n")
            assert len(steps) == LEVELS[level].operands - 1
            value = None
            for line in steps:
                lhs, op, rhs, res = STEP.match(line).groups()
                if value is not None:
                    assert int(lhs) == value
                expect = {"+": int(lhs) + int(rhs), "-": int(lhs) - int(rhs), "*": int(lhs) * int(rhs)}[op]
                assert int(res) == expect
                value = expect
            assert value == prob.answer
            if prob.style == "plain":
                assert prob.prompt == prob.expression and last == f"\\boxed{{{prob.answer}}}"
            else:
                assert prob.prompt == f"What is {prob.expression}?"
                assert last in (f"\\boxed{{{prob.answer}}}", f"#### {prob.answer}")
            expr = prob.expression
            assert expr.replace("-", "+").replace("*", "+").count("+") == LEVELS[level].operands - 1


def test_two_prompt_styles_and_answer_conventions():
    from rlvr.data.synthetic import HASH_ANSWER_FRACTION, QUESTION_FRACTION

    train = canonical_split("train")
    question = [p for p in train if p.style == "question"]
    hashed = [p for p in question if p.response.endswith(f"#### {p.answer}")]
    assert abs(len(question) / len(train) - QUESTION_FRACTION) < 0.02
    assert abs(len(hashed) / len(question) - HASH_ANSWER_FRACTION) < 0.02
    # the #### convention only ever comes with question-style prompts, and the default reward rejects it
    assert all(p.response.endswith("}") for p in train if p.style == "plain")
    assert not is_correct(hashed[0].response, hashed[0].answer)  # the format gap RL closes
    assert {p.style for p in canonical_split("test")} == {"plain", "question"}


def test_lengths_fit_the_token_budget_and_vary():
    tok = build_tokenizer()
    test = canonical_split("test")
    prompt_lens = [len(tok(render_prompt(tok, p.prompt))["input_ids"]) for p in test]
    resp_lens = [sum(encode_example(tok, p.prompt, p.response)["response_mask"]) for p in test]
    assert max(prompt_lens) < 48
    assert max(resp_lens) < 96
    assert min(resp_lens) <= 26 and max(resp_lens) >= 2 * min(resp_lens)
    assert {p.difficulty for p in test} == set(LEVELS)


def is_correct(completion: str, answer: object) -> bool:
    return bool(math_reward(completion, answer=str(answer)).correct)


def test_the_default_reward_grades_the_last_box():
    assert is_correct("12+3=15\n\\boxed{15}", "15")
    assert is_correct("\\boxed{7} then \\boxed{-4}", -4)
    assert not is_correct("\\boxed{-4} then \\boxed{7}", -4)
    assert not is_correct("15", 15)
    assert not is_correct("12+3=15\n#### 15", 15)
