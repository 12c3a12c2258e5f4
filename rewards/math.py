"""Verifiable math rewards: `math` (boxed answers) and `gsm8k` (`#### 42`, boxed or `Answer:`).

Comparison runs in tiers: the answer's shape is reduced first (formatting wrappers, choice letters,
`m+n=113` equations, units; see `rewards.math_forms`), then a normalised string match, then for an
integer gold an exact value check (`42`, `042`, `42.0`, `10^6`-style arithmetic through the bounded
evaluator in `rewards.safe_arith`), and for other golds Math-Verify's `verify(gold, pred)` with the
gold first. Pathological predictions (exponent towers, huge factorials, deep nesting, very long
answers, code-like text) are refused before sympy, after normalisation. The rule for each class is in
docs/rewards.md.

These functions are meant to run inside `rlvr.reward.sandbox.VerifierPool` workers: Math-Verify uses
`signal.alarm` (main thread only) and sympy can hang or execute injected code, so the trainer process
never calls them on model output. Scores are 1.0 / 0.0 here; `RewardsConfig.correct_score` /
`wrong_score` map the verdict to the training reward.
"""

from __future__ import annotations

import logging
import re
from typing import NamedTuple

from rewards.math_extract import (
    DEFAULT_TAIL_CHARS,
    THINK_OPEN,
    answer_unit,
    clean_answer,
    extract_answer,
    extract_gold,
    graded_text,
    integer_value,
    is_integer_answer,
    normalize_answer,
)
from rewards.math_forms import canonical_unit, choice_parts, equation_rhs
from rewards.safe_arith import is_number_notation, safe_value
from rlvr.reward.registry import register_reward
from rlvr.reward.types import RewardResult

MAX_SYMBOLIC_CHARS = 200
MAX_BRACE_DEPTH = 8
MAX_FACTORIAL_DIGITS = 3
# `(a^p)^q` with p * q above this is a tower in disguise: `((3^{999})^{999})^{999}` has 10^9 digits.
MAX_TOWER_EXPONENT = 10_000
# A power whose exponent holds a power: `9^{9^9}`, `9^9^9`, `2^(3^4)`, `9^{9}^{9}`, `9**9**9`. An exponent
# without braces is one token in LaTeX, so `x^4+2x^2+1` is two separate powers, not a tower.
_NESTED_POWER_RE = re.compile(
    r"\^\s*\{[^{}]*\^|\^\s*\{[^{}]*\}\s*\^|\^\s*\(?\s*[\w.]*\s*\^|\*\*\s*\(?\s*[\w.]*\s*\*\*"
)
_BIG_EXPONENT_RE = re.compile(r"(?:\^\s*\{?\s*-?\s*|\*\*\s*)\d{4,}|!\s*!")
_CODE_RE = re.compile(r"__|\bimport\b|\blambda\b|\beval\b|\bexec\b|\bos\.|\bsys\.|[`;'\"]")
_FACTORIAL_ARG_RE = re.compile(r"(?<![\d.])(\d+)\s*$")
_EXPONENT_RE = re.compile(r"\^\s*\{?\s*(\d+)")
_CLOSERS = {")": "(", "}": "{", "]": "["}


class Verdict(NamedTuple):
    """The outcome of comparing one gold with one prediction; `guard` names a layer that decided it."""

    correct: bool
    guard: str | None = None


def _factorial_too_large(answer: str) -> bool:
    """A `!` must follow a literal integer of at most MAX_FACTORIAL_DIGITS digits (`(10^{10})!` is refused)."""
    for i, ch in enumerate(answer):
        if ch != "!" or (i > 0 and answer[i - 1] == "\\"):
            continue
        m = _FACTORIAL_ARG_RE.search(answer[:i])
        if m is None or len(m.group(1)) > MAX_FACTORIAL_DIGITS:
            return True
    return False


def _tower_too_large(answer: str) -> bool:
    """A power of a bracketed group that itself holds a power, with a huge combined exponent."""
    for m in _EXPONENT_RE.finditer(answer):
        end = len(answer[: m.start()].rstrip()) - 1
        if end < 0 or answer[end] not in _CLOSERS:
            continue
        close, open_, depth = answer[end], _CLOSERS[answer[end]], 0
        for start in range(end, -1, -1):
            depth += (answer[start] == close) - (answer[start] == open_)
            if depth == 0:
                break
        inner = [int(e) for e in _EXPONENT_RE.findall(answer[start:end])]
        if inner and max(inner) * int(m.group(1)) > MAX_TOWER_EXPONENT:
            return True
    return False


def unsafe_for_sympy(answer: str) -> str | None:
    """Why an answer must not be parsed symbolically, or None if it is safe.

    Checks the answer as written and as it will be handed to Math-Verify (after `clean_answer`, which
    rewrites `1e999999999` to `1\\times10^{999999999}`). Huge or nested exponents, large factorials
    and deep nesting can make sympy run for minutes or exhaust memory; code-like text is never parsed.
    """
    for form in (answer, clean_answer(answer)):
        if len(form) > MAX_SYMBOLIC_CHARS:
            return "answer too long"
        depth = max_depth = 0
        for ch in form:
            depth += ch == "{"
            depth -= ch == "}"
            max_depth = max(max_depth, depth)
        if max_depth > MAX_BRACE_DEPTH:
            return "nesting too deep"
        if _NESTED_POWER_RE.search(form) or _BIG_EXPONENT_RE.search(form) or _tower_too_large(form):
            return "exponent too large"
        if _factorial_too_large(form.replace("\\!", "")):
            return "factorial too large"
        if _CODE_RE.search(form):
            return "code-like text"
    return None


def _math_verify_equal(gold: str, pred: str, timeout_s: int) -> Verdict:
    """Math-Verify comparison of two extracted answers, gold first (the function is asymmetric).

    Math-Verify's own timeouts would otherwise return "no match" silently; they come back as
    `Verdict(False, "verify_timeout")` so the scorer counts them.
    """
    from math_verify import LatexExtractionConfig, parse, verify
    from math_verify.errors import TimeoutException
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
    try:
        # Only LaTeX extraction: ExprExtractionConfig goes through sympy's parse_expr, which evaluates code.
        gold_parsed = _quietly(parse, f"\\boxed{{{gold}}}", config, timeout_s)
        pred_parsed = _quietly(parse, f"\\boxed{{{pred}}}", config, timeout_s)
        if not gold_parsed or not pred_parsed:
            return Verdict(False)
        try:
            return Verdict(
                bool(verify(gold_parsed, pred_parsed, timeout_seconds=timeout_s, raise_on_error=True))
            )
        except TimeoutException:
            raise
        except Exception:
            # One candidate pair failed: let Math-Verify skip it and try the others, as it does by default.
            return Verdict(bool(verify(gold_parsed, pred_parsed, timeout_seconds=timeout_s)))
    except TimeoutException:
        return Verdict(False, "verify_timeout")


def _quietly(parse, text: str, config: list, timeout_s: int) -> list:
    """`parse` raising only its timeout; any other parse failure is "nothing parsed"."""
    from math_verify.errors import TimeoutException

    try:
        return parse(text, extraction_config=config, parsing_timeout=timeout_s, raise_on_error=True)
    except TimeoutException:
        raise
    except Exception:
        return []


def _reduce_shape(gold: str, pred: str) -> tuple[str, str] | Verdict:
    """Apply the choice-letter, unit and equation rules; a Verdict when one of them decides."""
    g_letter, g_rest = choice_parts(gold)
    p_letter, p_rest = choice_parts(pred)
    if g_letter is not None and not g_rest:
        return Verdict(p_letter == g_letter)
    if p_letter is not None:
        if g_letter is not None:
            return Verdict(p_letter == g_letter)
        if not p_rest:
            return Verdict(False)
        pred = p_rest
    elif g_letter is not None:
        gold = g_rest
    g_unit, p_unit = canonical_unit(answer_unit(gold)), canonical_unit(answer_unit(pred))
    if g_unit is not None and p_unit is not None and g_unit != p_unit:
        return Verdict(False)
    if "=" not in gold:
        pred = equation_rhs(pred, value_of=_plain_value) or pred
    return gold, pred


def _plain_value(answer: str) -> object:
    return safe_value(normalize_answer(answer))


def compare_answers(gold: str, pred: str, symbolic: bool = True, timeout_s: int = 1) -> Verdict:
    """Tiered equivalence of one gold answer and an extracted prediction (rules in docs/rewards.md).

    Args:
        gold: one gold answer (already extracted from `\\boxed{}` / `####`).
        pred: the extracted prediction.
        symbolic: allow the Math-Verify tier (off = string and exact-value match only).
        timeout_s: Math-Verify's own per-call timeout (signal based, so main thread only).

    Returns:
        Verdict(correct, guard): `guard` is "filter" or "verify_timeout" when that layer decided.
    """
    shaped = _reduce_shape(gold, pred)
    if isinstance(shaped, Verdict):
        return shaped
    gold, pred = shaped
    gold_norm, pred_norm = normalize_answer(gold), normalize_answer(pred)
    if not pred_norm:
        return Verdict(False)
    if gold_norm == pred_norm:
        return Verdict(True)
    if is_integer_answer(gold_norm):
        value = integer_value(pred_norm)
        if value is None and is_number_notation(pred_norm):
            value = safe_value(pred_norm)
        return Verdict(value is not None and value == int(gold_norm))
    if not symbolic:
        return Verdict(False)
    if unsafe_for_sympy(pred) or unsafe_for_sympy(gold):
        return Verdict(False, "filter")
    return _math_verify_equal(clean_answer(gold), clean_answer(pred), timeout_s)


def answers_match(gold: str, pred: str, symbolic: bool = True, timeout_s: int = 1) -> bool:
    """True when the prediction is equivalent to the gold answer (see `compare_answers`)."""
    return compare_answers(gold, pred, symbolic=symbolic, timeout_s=timeout_s).correct


def verify_math(
    completion: str,
    answer: object,
    *,
    style: str = "boxed",
    think: bool | str = "auto",
    tail_chars: int = DEFAULT_TAIL_CHARS,
    symbolic: bool = True,
    timeout_s: int = 1,
    prompt: str | None = None,
) -> RewardResult:
    """Score a completion against one or more gold answers.

    Args:
        completion: the model's response text.
        answer: gold answer, or a list of acceptable gold answers.
        style: answer extraction, see `rewards.math_extract.extract_answer`.
        think: "auto" (default: a response that opens `<think>` is graded only after `</think>`, and
            is wrong without it), "require" / true (`</think>` is mandatory), "off" / false (ignore
            think tags). See `rewards.math_extract.graded_text`.
        tail_chars: only the last `tail_chars` characters are searched for the answer.
        symbolic: enable the Math-Verify tier.
        timeout_s: Math-Verify's internal timeout per call (the sandbox enforces the hard limit).
        prompt: the rendered prompt (the row's `prompt` field); one ending in `<think>` opened the think
            block for the response.

    Returns:
        RewardResult with score 1.0 / 0.0; `format_ok` is False when the think block is unclosed or
        no answer was found; `guard` names the layer that refused the comparison, if one did.
    """
    opened = isinstance(prompt, str) and prompt.rstrip().endswith(THINK_OPEN)
    text = graded_text(completion, think, opened=opened)
    if text is None:
        return RewardResult(score=0.0, correct=False, format_ok=False)
    pred = extract_answer(text, style=style, tail_chars=tail_chars)
    if pred is None:
        return RewardResult(score=0.0, correct=False, format_ok=False)
    guard = None
    for gold in extract_gold(answer):
        verdict = compare_answers(gold, pred, symbolic=symbolic, timeout_s=timeout_s)
        if verdict.correct:
            return RewardResult(score=1.0, correct=True, extracted=pred[:200], format_ok=True)
        guard = guard or verdict.guard
    return RewardResult(score=0.0, correct=False, extracted=pred[:200], format_ok=True, guard=guard)


def _quiet_math_verify() -> None:
    # A parse timeout logs the whole completion at WARNING; 1 MB completions would flood the log.
    logging.getLogger("math_verify").setLevel(logging.ERROR)


@register_reward("math")
def math_reward(
    completion: str,
    *,
    answer: object,
    style: str = "boxed",
    think: bool | str = "auto",
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
        prompt=row_fields.get("prompt"),
    )


@register_reward("gsm8k")
def gsm8k_reward(
    completion: str,
    *,
    answer: object,
    style: str = "auto",
    think: bool | str = "auto",
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
        prompt=row_fields.get("prompt"),
    )
