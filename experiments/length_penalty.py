"""A length penalty for correct answers, the reward GRPO is given in the DRPO comparison (`drpo_length.py`).

A shaping term (not primary: the `math` term gives the verdict): a correct response of |o| tokens gets
`-alpha * |o| / max_tokens` on top of its correctness reward, a wrong one gets 0. This is the usual way to
ask GRPO for shorter answers (and the baseline the DRPO paper argues against): inside a group where every
answer is right, the group normalisation turns the small length differences into advantages of order one,
so the longer correct answers are pushed down as if they were wrong.
"""

from __future__ import annotations

from rewards.math import math_reward


def length_penalty(
    completion: str,
    *,
    answer: object,
    response_tokens: int | None = None,
    max_tokens: int = 64,
    alpha: float = 0.5,
    **row: object,
) -> float:
    """-alpha * |o| / max_tokens for a correct response, 0 for a wrong one."""
    if response_tokens is None:
        raise ValueError("length_penalty needs response_tokens (the scorer passes it)")
    if not math_reward(completion, answer=answer).correct:
        return 0.0
    return -alpha * min(int(response_tokens), max_tokens) / max_tokens
