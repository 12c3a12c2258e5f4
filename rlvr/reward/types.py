"""The structured result every reward returns, and the error raised when rewards cannot be trusted."""

from __future__ import annotations

import math
from dataclasses import dataclass


class RewardError(RuntimeError):
    """Rewards are broken (bad contract, too many failures, sandbox down): training must stop."""


@dataclass
class RewardResult:
    """The outcome of scoring one completion. Plain fields only, so it pickles across processes.

    Attributes:
        score: the scalar reward (for a combined result: the weighted sum of the terms).
        correct: the verifier's verdict (False on errors and timeouts).
        extracted: the final answer the verifier extracted, for audit (None when none was found).
        error: why scoring failed (exception, timeout, crash); None when it ran to the end.
        timed_out: the item hit the sandbox's wall-clock limit and its worker was killed.
        format_ok: the completion has the expected format (closed think block, an answer marker).
        guard: the protection layer inside the reward that decided a wrong verdict without a full
            comparison: "filter" (the answer was refused before symbolic parsing: too long, huge
            exponent or factorial, code-like) or "verify_timeout" (Math-Verify's own timeout fired).
            The scorer counts them (`reward/filtered`, `reward/verify_timeouts`); None otherwise.
    """

    score: float
    correct: bool = False
    extracted: str | None = None
    error: str | None = None
    timed_out: bool = False
    format_ok: bool = True
    guard: str | None = None

    @property
    def failed(self) -> bool:
        """True when the reward did not run to completion (error or timeout)."""
        return self.error is not None or self.timed_out


def coerce_result(value: object, where: str) -> RewardResult:
    """Turn a reward function's return value into a RewardResult, or raise with the problem.

    Args:
        value: what the reward function returned.
        where: the function's name for the message.

    Returns:
        A RewardResult with a finite score.

    Raises:
        TypeError: the value is not a float, int or RewardResult (bool is refused: say 1.0 or 0.0).
        ValueError: the score is NaN or infinite.
    """
    if isinstance(value, RewardResult):
        result = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        result = RewardResult(score=float(value), correct=float(value) > 0)
    else:
        raise TypeError(
            f"reward {where} returned {type(value).__name__}; it must return a float or a RewardResult"
        )
    if not isinstance(result.score, (int, float)) or isinstance(result.score, bool):
        raise TypeError(f"reward {where} returned RewardResult.score of type {type(result.score).__name__}")
    if not math.isfinite(result.score):
        raise ValueError(f"reward {where} returned a non-finite score ({result.score})")
    result.score = float(result.score)
    return result
