"""Verifiable math rewards: `math` (boxed answers) and `gsm8k` (`#### 42`, boxed or `Answer:`).

Comparison runs in tiers (algorithms.md §M): normalised string match, then Math-Verify's
`verify(gold, pred)` with the gold first. Integer golds are strict (`42` accepts `42`, `42.0`, `42,000`
style separators, never `84/2`). Pathological predictions (exponent towers, deep nesting, very long
answers, code-like text) never reach sympy.

These functions are meant to run inside `rlvr.reward.sandbox.VerifierPool` workers: Math-Verify uses
`signal.alarm` (main thread only) and sympy can hang or execute injected code, so the trainer process
never calls them on model output. Scores are 1.0 / 0.0 here; `RewardsConfig.correct_score` /
`wrong_score` map the verdict to the training reward.
"""

from __future__ import annotations

import logging
import re

from rewards.math_extract import (
    DEFAULT_TAIL_CHARS,
    clean_answer,
    extract_answer,
    extract_gold,
    integer_value,
    is_integer_answer,
    normalize_answer,
    split_think,
)
from rlvr.reward.registry import register_reward
from rlvr.reward.types import RewardResult

MAX_SYMBOLIC_CHARS = 200
MAX_BRACE_DEPTH = 8
_NESTED_POWER_RE = re.compile(r"\^\s*\{[^{}]*\^|\^\s*\(?[^{}\s]*\^|\*\*[^*]*\*\*")
_BIG_EXPONENT_RE = re.compile(r"(?:\^\s*\{?\s*|\*\*\s*)\d{4,}|!\s*!|\d{5,}\s*!")
_CODE_RE = re.compile(r"__|\bimport\b|\blambda\b|\beval\b|\bexec\b|\bos\.|\bsys\.|[`;'\"]")


def unsafe_for_sympy(answer: str) -> str | None:
    """Why an extracted answer must not be parsed symbolically, or None if it is safe.

    Guards from prime_math's `should_allow_eval` and Dr. GRPO: huge or nested exponents and deep
    nesting can make sympy run for minutes or exhaust memory; code-like text is never parsed.
    """
    if len(answer) > MAX_SYMBOLIC_CHARS:
        return "answer too long"
    depth = max_depth = 0
    for ch in answer:
        depth += ch == "{"
        depth -= ch == "}"
        max_depth = max(max_depth, depth)
    if max_depth > MAX_BRACE_DEPTH:
        return "nesting too deep"
    if _NESTED_POWER_RE.search(answer) or _BIG_EXPONENT_RE.search(answer):
        return "exponent too large"
    if _CODE_RE.search(answer):
        return "code-like text"
    return None


def _math_verify_equal(gold: str, pred: str, timeout_s: int) -> bool:
    """Math-Verify comparison of two extracted answers, gold first (the function is asymmetric)."""
    from math_verify import LatexExtractionConfig, parse, verify
    from math_verify.parser import NormalizationConfig

    config = [
        LatexExtractionConfig(
            boxed_match_priority=0,
            normalization_config=NormalizationConfig(
                basic_latex=True,
                units=True,
                malformed_operators=False,
                nits=False,
                boxed="all",
                equations=False,
            ),
        )
    ]
    # Only LaTeX extraction: ExprExtractionConfig goes through sympy's parse_expr, which evaluates code.
    gold_parsed = parse(f"\\boxed{{{gold}}}", extraction_config=config, parsing_timeout=timeout_s)
    pred_parsed = parse(f"\\boxed{{{pred}}}", extraction_config=config, parsing_timeout=timeout_s)
    if not gold_parsed or not pred_parsed:
        return False
    return bool(verify(gold_parsed, pred_parsed, timeout_seconds=timeout_s))


def answers_match(gold: str, pred: str, symbolic: bool = True, timeout_s: int = 1) -> bool:
    """Tiered equivalence of a gold answer and an extracted prediction.

    Args:
        gold: one gold answer (already extracted from `\\boxed{}` / `####`).
        pred: the extracted prediction.
        symbolic: allow the Math-Verify tier (off = normalised string match only).
        timeout_s: Math-Verify's own per-call timeout (signal based, so main thread only).

    Returns:
        True when the prediction is equivalent to the gold answer.
    """
    gold_norm, pred_norm = normalize_answer(gold), normalize_answer(pred)
    if not pred_norm:
        return False
    if gold_norm == pred_norm:
        return True
    if is_integer_answer(gold_norm):
        return integer_value(pred_norm) == int(gold_norm)
    if not symbolic or unsafe_for_sympy(pred) or unsafe_for_sympy(gold):
        return False
    return _math_verify_equal(clean_answer(gold), clean_answer(pred), timeout_s)


def verify_math(
    completion: str,
    answer: object,
    *,
    style: str = "boxed",
    think: bool = False,
    tail_chars: int = DEFAULT_TAIL_CHARS,
    symbolic: bool = True,
    timeout_s: int = 1,
) -> RewardResult:
    """Score a completion against one or more gold answers.

    Args:
        completion: the model's response text.
        answer: gold answer, or a list of acceptable gold answers.
        style: answer extraction, see `rewards.math_extract.extract_answer`.
        think: the response must close a `<think>` block; only the text after it is graded.
        tail_chars: only the last `tail_chars` characters are searched for the answer.
        symbolic: enable the Math-Verify tier.
        timeout_s: Math-Verify's internal timeout per call (the sandbox enforces the hard limit).

    Returns:
        RewardResult with score 1.0 / 0.0; `format_ok` is False when the think block is unclosed or
        no answer was found.
    """
    text = completion
    if think:
        text = split_think(completion)
        if text is None:
            return RewardResult(score=0.0, correct=False, format_ok=False)
    pred = extract_answer(text, style=style, tail_chars=tail_chars)
    if pred is None:
        return RewardResult(score=0.0, correct=False, format_ok=False)
    golds = extract_gold(answer)
    correct = any(answers_match(g, pred, symbolic=symbolic, timeout_s=timeout_s) for g in golds)
    return RewardResult(score=float(correct), correct=correct, extracted=pred[:200], format_ok=True)


def _quiet_math_verify() -> None:
    # A parse timeout logs the whole completion at WARNING; 1 MB completions would flood the log.
    logging.getLogger("math_verify").setLevel(logging.ERROR)


@register_reward("math")
def math_reward(
    completion: str,
    *,
    answer: object,
    style: str = "boxed",
    think: bool = False,
    tail_chars: int = DEFAULT_TAIL_CHARS,
    symbolic: bool = True,
    timeout_s: int = 1,
    **row_fields: object,
) -> RewardResult:
    """MATH-style reward: the last `\\boxed{}` answer against the gold (arguments as in `verify_math`)."""
    _quiet_math_verify()
    return verify_math(
        completion,
        answer,
        style=style,
        think=think,
        tail_chars=tail_chars,
        symbolic=symbolic,
        timeout_s=timeout_s,
    )


@register_reward("gsm8k")
def gsm8k_reward(
    completion: str,
    *,
    answer: object,
    style: str = "auto",
    think: bool = False,
    tail_chars: int = DEFAULT_TAIL_CHARS,
    symbolic: bool = True,
    timeout_s: int = 1,
    **row_fields: object,
) -> RewardResult:
    """GSM8K reward: `\\boxed{}`, then `#### 42`, then `Answer: 42`; the gold may be a full GSM8K solution."""
    _quiet_math_verify()
    return verify_math(
        completion,
        answer,
        style=style,
        think=think,
        tail_chars=tail_chars,
        symbolic=symbolic,
        timeout_s=timeout_s,
    )
