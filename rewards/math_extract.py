"""Final-answer extraction and string normalisation for math rewards (pure Python, no sympy).

Math-Verify on a whole response grades whatever span it finds first, which is often not the final answer,
so rlvr extracts the final answer itself and only asks Math-Verify to compare two extracted answers.
Everything here works on a capped tail of the completion, so its cost is bounded whatever the model writes.
"""

from __future__ import annotations

import re

from rewards.math_forms import strip_wrappers

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
THINK_MODES = ("auto", "require", "off")
DEFAULT_TAIL_CHARS = 600

_BOX_RE = re.compile(r"\\(?:boxed|fbox)\s*")
_ANSWER_RE = re.compile(r"(?i)answer\s*(?:is)?\s*:\s*([^\n]+)")


def split_think(text: str) -> str | None:
    """Return the text after the last `</think>`, or None when the think block was never closed.

    A missing close tag means the response was cut off (or ignored the template): a format error.
    """
    pos = text.rfind(THINK_CLOSE)
    if pos < 0:
        return None
    return text[pos + len(THINK_CLOSE) :]


def graded_text(text: str, think: bool | str = "auto", opened: bool = False) -> str | None:
    """The part of a response that is graded, or None when a think block was opened and never closed.

    Args:
        text: the whole response.
        think: "auto" (default): a response containing `</think>` is graded after its last `</think>`;
            one that opens `<think>` without closing it is a format error (None); any other response is
            graded whole. "require" (or True): the response must contain `</think>`. "off" (or False):
            think tags are ignored and the whole response is graded.
        opened: the prompt already opened the think block (R1-style templates end the prompt with
            `<think>`), so in "auto" mode the response must close it.
    """
    mode = {True: "require", False: "off"}.get(think, think) if isinstance(think, bool) else think
    if mode not in THINK_MODES:
        raise ValueError(f"think must be one of {THINK_MODES} (or true/false), got {think!r}")
    if mode == "off":
        return text
    after = split_think(text)
    if after is not None:
        return after
    if mode == "require" or opened or THINK_OPEN in text:
        return None
    return text


def last_boxed(text: str) -> str | None:
    """The content of the last `\\boxed{...}` / `\\fbox{...}` with brace matching, else None.

    `\\boxed 5` (no braces) yields the next token. An unbalanced last box yields None rather than
    falling back to an earlier box: the final answer is the last one the model wrote.
    """
    matches = list(_BOX_RE.finditer(text))
    if not matches:
        return None
    start = matches[-1].end()
    if start >= len(text):
        return None
    if text[start] != "{":
        token = re.match(r"[^\s$.,;]+", text[start:])
        return token.group(0) if token else None
    depth = 0
    for i in range(start, len(text)):
        ch = text[i]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i].strip()
    return None


def gsm8k_answer(text: str) -> str | None:
    """The rest of the line after the last `####` marker (GSM8K style), or None if absent or empty."""
    pos = text.rfind("####")
    if pos < 0:
        return None
    value = text[pos + 4 :].split("\n", 1)[0].strip()
    return value or None


def answer_line(text: str) -> str | None:
    """The rest of the line after the last `Answer:` (Minerva style), or None."""
    matches = _ANSWER_RE.findall(text)
    if not matches:
        return None
    value = matches[-1].strip()
    boxed = last_boxed(value)
    return boxed if boxed is not None else (value or None)


_NUMBER_RE = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def last_number(text: str) -> str | None:
    """The last number in the text (`1,234`, `-5`, `2.5`), or None: lm-eval-harness' "flexible extract"
    for GSM8K, for instruct models that state the answer in prose instead of a marked format."""
    found = _NUMBER_RE.findall(text)
    if not found:
        return None
    value = found[-1].replace(",", "").rstrip(".")
    return value or None


EXTRACTORS = {
    "boxed": (last_boxed,),
    "gsm8k": (gsm8k_answer,),
    "answer": (answer_line,),
    "auto": (last_boxed, gsm8k_answer, answer_line),
    # the marked formats first; only without any of them, the last number of the response
    "flexible": (last_boxed, gsm8k_answer, answer_line, last_number),
}


def extract_answer(text: str, style: str = "boxed", tail_chars: int = DEFAULT_TAIL_CHARS) -> str | None:
    """Extract the final answer from the last `tail_chars` characters of a response.

    Args:
        text: the response (after the think block, if any).
        style: "boxed", "gsm8k" (`#### 42`), "answer" (`Answer: 42`), "auto" (all three, in that order)
            or "flexible" (those three, then the last number in the response).
        tail_chars: how much of the end of the response is searched.

    Returns:
        The answer string, or None when there is none.
    """
    try:
        extractors = EXTRACTORS[style]
    except KeyError:
        raise ValueError(f"unknown answer style {style!r}; known: {sorted(EXTRACTORS)}") from None
    tail = text[-tail_chars:].replace("\x00", "")
    for extractor in extractors:
        value = extractor(tail)
        if value is not None:
            return value
    return None


def extract_gold(answer: object) -> list[str]:
    """Gold answers as strings: accepts a string, a number or a list; strips `\\boxed{}` and `####`."""
    golds = answer if isinstance(answer, (list, tuple)) else [answer]
    out = []
    for gold in golds:
        text = str(gold).strip()
        if "\\boxed" in text or "\\fbox" in text:
            text = last_boxed(text) or text
        elif "####" in text:
            text = gsm8k_answer(text) or text
        if text:
            out.append(text)
    return out


# ---- normalisation (Hendrycks `strip_string` + Minerva `normalize_final_answer`, extended) ----

# Spacing macros, but not the `\\\\` row separator of matrices (hence the look-behind).
_SPACING_RE = re.compile(r"(?<!\\)\\(?:[!,;: ]|qquad|quad)|[~\u2009\u202f\u00a0]")
_DROP = (
    "\\left",
    "\\right",
    "\\displaystyle",
    "\\$",
    "$",
    "\\%",
    "%",
    "^{\\circ}",
    "^\\circ",
    "°",
    "\\degree",
    "{,}",
    "\\dots",
    "\\ldots",
)
_UNIT_WORDS = (
    r"(?:square\s+)?(?:units?|cm|m|km|mm|in|inches|inch|ft|feet|foot|yards?|miles?|mph|meters?|"
    r"centimeters?|kilometers?|degrees?|dollars?|cents?|hours?|minutes?|seconds?|days?|weeks?|years?|"
    r"pounds?|lbs?|kg|g|grams?|liters?|ml|gallons?|points?|ways|students|people|apples|cookies)"
)
_TRAILING_TEXT_RE = re.compile(
    r"\\(?:text|textbf|mathrm|mbox|textnormal)\{\s*(?P<unit>" + _UNIT_WORDS + r")\s*\}(?:\^?[23])?\s*$"
)
_TRAILING_WORD_RE = re.compile(r"(?<=[\d}])\s*(?P<unit>" + _UNIT_WORDS + r")(?:\^?[23])?\s*$")
_TEXT_RE = re.compile(r"\\(?:text|textbf|mathrm|mbox|textnormal|operatorname)\{([^{}]*)\}")
_SCI_RE = re.compile(r"^(-?\d+(?:\.\d+)?)[eE]([+-]?\d+)$")
_COMMA_INT_RE = re.compile(r"^-?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_ASSIGN_RE = re.compile(r"^\s*[A-Za-z](?:_\{?\w+\}?)?\s*=\s*(?!.*=)")
_INT_RE = re.compile(r"^-?\d+$")
_INTLIKE_RE = re.compile(r"^-?\d+(?:\.0*)?$")


def clean_answer(text: str) -> str:
    """Light, meaning-preserving cleanup: the form handed to Math-Verify.

    Drops spacing macros, dollars, percent and degree signs, trailing unit words, a leading `x =`;
    turns `6.02e23` into `6.02\\times10^{23}` (Math-Verify reads `e` as Euler's number) and
    `\\dfrac` into `\\frac`; removes thousands separators.
    """
    s = strip_wrappers(text.replace("\x00", "").replace("\u2212", "-"))
    s = _SPACING_RE.sub("", s)
    for token in _DROP:
        s = s.replace(token, "")
    s = _fix_fracs(s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac"))
    s = _TRAILING_TEXT_RE.sub("", s).strip()
    s = _TRAILING_WORD_RE.sub("", s).strip()
    s = _ASSIGN_RE.sub("", s).strip()
    s = s.rstrip(".").strip()
    if _COMMA_INT_RE.match(s):
        s = s.replace(",", "")
    sci = _SCI_RE.match(s)
    if sci:
        s = f"{sci.group(1)}\\times10^{{{int(sci.group(2))}}}"
    return s


def answer_unit(text: str) -> str | None:
    """The unit word after the number (`5 cm` -> `cm`, `\\text{12 apples}` -> `apples`), else None."""
    s = _SPACING_RE.sub(" ", strip_wrappers(text.replace("\x00", ""))).rstrip(". ")
    for pattern in (_TRAILING_TEXT_RE, _TRAILING_WORD_RE):
        m = pattern.search(s)
        if m:
            return m.group("unit")
    return None


def _fix_fracs(s: str) -> str:
    """`\\frac12` -> `\\frac{1}{2}`, `\\frac1b` -> `\\frac{1}{b}` (Hendrycks)."""
    parts = s.split("\\frac")
    out = parts[0]
    for part in parts[1:]:
        out += "\\frac"
        if not part or part[0] == "{":
            out += part
            continue
        if len(part) < 2:
            return s
        a, b, rest = part[0], part[1], part[2:]
        out += "{" + a + "}" + (b + rest if b == "{" else "{" + b + "}" + rest)
    return out


def normalize_answer(text: str) -> str:
    """Aggressive normalisation for the string-match tier: spaces and `\\text{}` wrappers removed.

    Two answers with equal normalised strings are taken as equal without any symbolic work.
    """
    s = clean_answer(text)
    s = _TEXT_RE.sub(r"\1", s)
    s = re.sub(r"\\sqrt(\w)", r"\\sqrt{\1}", s)
    s = s.replace(" ", "")
    if s.startswith("."):
        s = "0" + s
    s = s.replace("{.", "{0.").replace("(.", "(0.")
    if re.fullmatch(r"-?\d+\.\d*?0+", s):
        s = s.rstrip("0").rstrip(".")
    if s.startswith("+"):
        s = s[1:]
    return s


def is_integer_answer(normalized: str) -> bool:
    """True for an integer gold (e.g. `-1234`): integers are compared strictly, never symbolically."""
    return bool(_INT_RE.match(normalized))


def integer_value(normalized: str) -> int | None:
    """The integer a normalised prediction spells (`42`, `42.0`), else None (`84/2` is not an integer)."""
    if not _INTLIKE_RE.match(normalized):
        return None
    return int(normalized.split(".")[0])
