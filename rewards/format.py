"""Format reward: penalise responses without a closed think block or without a final-answer marker.

A shaping term (no verdict). Combine it with a verifier, e.g. DeepScaleR's −1 for format errors::

    terms: [{fn: math}, {fn: format, kwargs: {think: true}}]
"""

from __future__ import annotations

from rewards.math_extract import DEFAULT_TAIL_CHARS, extract_answer, split_think
from rlvr.reward.registry import register_reward
from rlvr.reward.types import RewardResult


@register_reward("format", shaping=True)
def format_reward(
    completion: str,
    *,
    answer: object = None,
    think: bool = True,
    style: str = "boxed",
    ok_score: float = 0.0,
    bad_score: float = -1.0,
    tail_chars: int = DEFAULT_TAIL_CHARS,
    **row_fields: object,
) -> RewardResult:
    """`ok_score` when the response is well formed, else `bad_score`.

    Args:
        completion: the response.
        answer: unused (every reward receives the row's answer).
        think: require a closed `<think>...</think>` block; the answer is searched after it.
        style: which final-answer marker is required ("boxed", "gsm8k", "answer", "auto").
        ok_score: score of a well-formed response.
        bad_score: score of a malformed one.
        tail_chars: how much of the end of the response is searched for the marker.
        **row_fields: ignored.
    """
    text = split_think(completion) if think else completion
    ok = text is not None and extract_answer(text, style=style, tail_chars=tail_chars) is not None
    return RewardResult(score=ok_score if ok else bad_score, correct=ok, format_ok=ok)
