"""The shapes a final answer comes in, reduced to the value to grade (pure Python, bounded work).

Benchmarks and models wrap answers in ways that are not part of the value:

* formatting commands around the whole answer: `\\textbf{(113)}`, `\\mathbf{127}`, `\\text{12 apples}`;
* a parenthesised number: `(113)`;
* a multiple-choice letter, alone or with its value: `(C)`, `\\textbf{(C) }12`, `C) 12`;
* an equation whose left side names the unknowns: `m+n=113`, `a+b+c = 12`, `f(3) = 5`;
* a unit after the number: `5 cm`, `12 apples` (two different units never match).

Each helper takes the extracted answer string and returns a smaller piece of it; none evaluates
anything. The rules are documented in docs/rewards.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_WRAPPERS = (
    "text",
    "textbf",
    "textit",
    "textnormal",
    "textrm",
    "mathbf",
    "mathrm",
    "mathit",
    "boldsymbol",
    "bm",
    "mbox",
    "emph",
    "underline",
    "boxed",
    "fbox",
)
_WRAPPER_RE = re.compile(r"^\\(" + "|".join(_WRAPPERS) + r")\s*\{")
_INLINE_WRAPPER_RE = re.compile(r"\\(?:" + "|".join(_WRAPPERS) + r")\s*\{([^{}]*)\}")
_PAREN_NUMBER_RE = re.compile(r"^\(\s*(-?\d+(?:\.\d+)?)\s*\)$")
_CHOICE_RE = re.compile(r"^(?:\(([A-E])\)|([A-E])\))\s*[:.]?\s*(.*)$", re.S)
_LETTER_RE = re.compile(r"^\(?([A-E])\)?$")
_SPACES_RE = re.compile(r"(?<!\\)\\(?:[,;: !]|quad|qquad)|~|\s+")
# Left side of `m+n = 113`: letters (with subscripts), digits, + - * ^ and parentheses, with a letter.
_UNKNOWNS_RE = re.compile(r"^(?=.*[A-Za-z])(?:[A-Za-z0-9_{}+\-*^()]|\\cdot)+$")

UNIT_ALIASES = {
    "in": "in",
    "inch": "in",
    "inches": "in",
    "ft": "ft",
    "feet": "ft",
    "foot": "ft",
    "m": "m",
    "meter": "m",
    "meters": "m",
    "cm": "cm",
    "centimeter": "cm",
    "centimeters": "cm",
    "km": "km",
    "kilometer": "km",
    "kilometers": "km",
    "mm": "mm",
    "g": "g",
    "gram": "g",
    "grams": "g",
    "kg": "kg",
    "lb": "lb",
    "lbs": "lb",
    "pound": "lb",
    "pounds": "lb",
    "hour": "h",
    "hours": "h",
    "minute": "min",
    "minutes": "min",
    "second": "s",
    "seconds": "s",
}
# Words that label a count rather than measure it: they never make two answers differ.
GENERIC_UNITS = frozenset({"unit", "units", "ways", "degree", "degrees"})


def _closing_brace(text: str, open_pos: int) -> int:
    depth = 0
    for i in range(open_pos, len(text)):
        depth += text[i] == "{"
        depth -= text[i] == "}"
        if depth == 0:
            return i
    return -1


def strip_wrappers(answer: str) -> str:
    """Remove formatting commands and parentheses that enclose the whole answer.

    `\\boxed{\\textbf{(113)}}` -> `113`, `\\mathbf{127}` -> `127`, `\\text{12 apples}` -> `12 apples`.
    A wrapper that covers only part of the answer is kept (`5\\text{ cm}` stays as it is).
    """
    s = answer.strip()
    for _ in range(8):
        m = _WRAPPER_RE.match(s)
        if m is None:
            break
        end = _closing_brace(s, m.end() - 1)
        if end != len(s) - 1:
            break
        s = s[m.end() : end].strip()
    number = _PAREN_NUMBER_RE.match(s)
    return number.group(1) if number else s


def _flat(answer: str) -> str:
    """Inline formatting commands replaced by their content, spacing removed (for pattern tests)."""
    s = answer
    for _ in range(4):
        s2 = _INLINE_WRAPPER_RE.sub(r"\1", s)
        if s2 == s:
            break
        s = s2
    return _SPACES_RE.sub("", s).replace("$", "")


def choice_parts(answer: str) -> tuple[str | None, str]:
    """Split a multiple-choice answer into (letter, rest): `(C) 12` -> ("C", "12"), `(C)` -> ("C", "").

    Returns (None, answer) when the answer does not start with a choice letter A-E.
    """
    flat = _flat(strip_wrappers(answer))
    letter = _LETTER_RE.match(flat)
    if letter:
        return letter.group(1), ""
    m = _CHOICE_RE.match(flat)
    if m is None:
        return None, answer
    return m.group(1) or m.group(2), strip_wrappers(m.group(3))


def equation_rhs(answer: str, value_of: Callable[[str], object] | None = None) -> str | None:
    """The last side of `unknowns = value` (`m+n=113` -> `113`), or None when it is not that shape.

    The first side must be an expression of letters (`x`, `m+n`, `a+b+c`, `f(3)`, `p_1+q`). With
    `value_of` (an exact evaluator returning None for non-arithmetic), a chain is reduced too when every
    side after the unknowns, including a first side without letters, has the value of the last:
    `m+n=25+8=033` -> `033`, `2+3=5` -> `5`; `2+3=6` and `x=5=y` are not reduced.
    """
    parts = answer.split("=")
    last = parts[-1].strip()
    if len(parts) < 2 or not last:
        return None
    first_is_unknowns = bool(_UNKNOWNS_RE.match(_SPACES_RE.sub("", parts[0])))
    middle = parts[1:-1] if first_is_unknowns else parts[:-1]
    if middle:
        if value_of is None:
            return None
        value = value_of(last)
        if value is None or any(value_of(p) != value for p in middle):
            return None
    return last


def canonical_unit(unit: str | None) -> str | None:
    """A unit word in one spelling (`inches` -> `in`); None for no unit or a generic count word."""
    if unit is None:
        return None
    word = re.sub(r"\s+", " ", unit.strip().lower())
    word = re.sub(r"^square ", "sq ", word)
    if word.split(" ")[-1] in GENERIC_UNITS:
        return None
    prefix, _, last = word.rpartition(" ")
    last = UNIT_ALIASES.get(last, last.rstrip("s") if len(last) > 3 else last)
    return f"{prefix} {last}".strip()
