"""DAPO overlong reward shaping (arXiv 2503.14476, eq. 13), a shaping term added to the verifier's score.

The scorer passes each response's length in tokens as the `response_tokens` row field.
"""

from __future__ import annotations

from rlvr.reward.registry import register_reward


def compute_overlong_penalty(
    response_tokens: int, max_response_tokens: int, cache_tokens: int, factor: float = 1.0
) -> float:
    """DAPO eq. 13: 0 up to `L_max - L_cache`, then a linear ramp to −1 at `L_max`, −1 beyond.

    Args:
        response_tokens: |y|, the response length in tokens.
        max_response_tokens: L_max.
        cache_tokens: L_cache, the soft-punishment interval.
        factor: scale of the penalty (verl's `overlong_penalty_factor`).

    Returns:
        The penalty R_length(y) * factor, in [-factor, 0].
    """
    if not 0 < cache_tokens <= max_response_tokens:
        raise ValueError(
            f"need 0 < cache_tokens ({cache_tokens}) <= max_response_tokens ({max_response_tokens})"
        )
    threshold = max_response_tokens - cache_tokens
    if response_tokens <= threshold:
        return 0.0
    if response_tokens > max_response_tokens:
        return -factor
    return (threshold - response_tokens) / cache_tokens * factor


@register_reward("overlong", shaping=True)
def overlong_reward(
    completion: str,
    *,
    answer: object = None,
    response_tokens: int | None = None,
    max_response_tokens: int,
    cache_tokens: int,
    factor: float = 1.0,
    **row_fields: object,
) -> float:
    """Overlong penalty of one response; `response_tokens` is supplied by the scorer."""
    if response_tokens is None:
        raise ValueError("overlong reward needs response_tokens: pass response_tokens= to RewardScorer.score")
    return compute_overlong_penalty(int(response_tokens), max_response_tokens, cache_tokens, factor)
