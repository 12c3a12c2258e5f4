"""A tiny exact evaluator for plain arithmetic answers (`10^6`, `2^{10}`, `\\frac{50}{2}`, `5!`).

An integer gold is compared with the *value* of the prediction only when that value can be computed
exactly and cheaply: numbers, `+ - * / ^ !`, `\\times`, `\\cdot`, `\\div`, `\\frac{}{}`, parentheses
and braces. Anything else (a letter, a function, a root, an ambiguous `2^10`) is "not evaluable" and the
answer is graded as before. Every step is bounded (literal length, exponent size, result size,
factorial argument, nesting), so no model output can make it run long. It is a recursive-descent parser
over a token list: model output never reaches Python's `eval` or sympy here.
"""

from __future__ import annotations

import re
from fractions import Fraction

MAX_CHARS = 120
MAX_LITERAL_DIGITS = 30
MAX_EXPONENT = 1000
MAX_RESULT_BITS = 4096
MAX_FACTORIAL = 200
MAX_DEPTH = 20

_TOKEN_RE = re.compile(r"\d+(?:\.\d+)?|\.\d+|\\[a-z]+|[-+*/^!(){}]")
_OPS = {"\\times": "*", "\\cdot": "*", "\\div": "/", "\\dfrac": "\\frac", "\\tfrac": "\\frac"}


class _NotEvaluable(Exception):
    """The text is not plain bounded arithmetic."""


def _tokens(text: str) -> list[str]:
    out, pos = [], 0
    for m in _TOKEN_RE.finditer(text):
        if m.start() != pos:
            raise _NotEvaluable(text[pos : m.start()])
        tok = _OPS.get(m.group(0), m.group(0))
        if tok.startswith("\\") and tok != "\\frac":
            raise _NotEvaluable(tok)
        out.append(tok)
        pos = m.end()
    if pos != len(text):
        raise _NotEvaluable(text[pos:])
    return out


def _check_size(value: Fraction) -> Fraction:
    if value.numerator.bit_length() > MAX_RESULT_BITS or value.denominator.bit_length() > MAX_RESULT_BITS:
        raise _NotEvaluable("result too large")
    return value


class _Parser:
    """expr := term (+|- term)*; term := unary (*|/ unary)*; unary := -unary | power;
    power := postfix (^ exponent)?; postfix := atom !*; atom := number | (expr) | {expr} | \\frac{expr}{expr}.
    """

    def __init__(self, tokens: list[str]) -> None:
        self.toks = tokens
        self.i = 0
        self.depth = 0

    def peek(self) -> str | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, expected: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (expected is not None and tok != expected):
            raise _NotEvaluable(f"expected {expected}")
        self.i += 1
        return tok

    def expr(self) -> Fraction:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _NotEvaluable("nesting too deep")
        value = self.term()
        while self.peek() in ("+", "-"):
            op = self.take()
            rhs = self.term()
            value = _check_size(value + rhs if op == "+" else value - rhs)
        self.depth -= 1
        return value

    def term(self) -> Fraction:
        value = self.unary()
        while self.peek() in ("*", "/"):
            op = self.take()
            rhs = self.unary()
            if op == "/" and rhs == 0:
                raise _NotEvaluable("division by zero")
            value = _check_size(value * rhs if op == "*" else value / rhs)
        return value

    def unary(self) -> Fraction:
        if self.peek() in ("-", "+"):
            sign = -1 if self.take() == "-" else 1
            return sign * self.unary()
        return self.power()

    def power(self) -> Fraction:
        base = self.postfix()
        if self.peek() != "^":
            return base
        self.take("^")
        tok = self.peek()
        if tok == "{":
            exponent = self.group("{", "}")
        elif tok is not None and tok.isdigit() and len(tok) == 1:
            # `10^6`; `2^10` is ambiguous in LaTeX (it renders as 2^1 0), so it is not evaluated.
            exponent = Fraction(int(self.take()))
        else:
            raise _NotEvaluable("exponent")
        if self.peek() == "^":
            raise _NotEvaluable("nested exponent")
        return _pow(base, exponent)

    def postfix(self) -> Fraction:
        value = self.atom()
        while self.peek() == "!":
            self.take()
            if value.denominator != 1 or not 0 <= value <= MAX_FACTORIAL:
                raise _NotEvaluable("factorial argument")
            value = Fraction(_factorial(int(value)))
        return value

    def atom(self) -> Fraction:
        tok = self.peek()
        if tok is None:
            raise _NotEvaluable("end of input")
        if tok == "(":
            return self.group("(", ")")
        if tok == "{":
            return self.group("{", "}")
        if tok == "\\frac":
            self.take()
            num = self.group("{", "}")
            den = self.group("{", "}")
            if den == 0:
                raise _NotEvaluable("division by zero")
            return _check_size(num / den)
        self.take()
        if not (tok[0].isdigit() or tok[0] == "."):
            raise _NotEvaluable(tok)
        if len(tok.replace(".", "")) > MAX_LITERAL_DIGITS:
            raise _NotEvaluable("literal too long")
        return Fraction(tok)

    def group(self, open_: str, close: str) -> Fraction:
        self.take(open_)
        value = self.expr()
        self.take(close)
        return value


def _factorial(n: int) -> int:
    out = 1
    for k in range(2, n + 1):
        out *= k
    return out


def _pow(base: Fraction, exponent: Fraction) -> Fraction:
    if exponent.denominator != 1 or abs(exponent) > MAX_EXPONENT:
        raise _NotEvaluable("exponent")
    e = int(exponent)
    bits = max(base.numerator.bit_length(), base.denominator.bit_length())
    if bits * abs(e) > MAX_RESULT_BITS:
        raise _NotEvaluable("result too large")
    if base == 0 and e < 0:
        raise _NotEvaluable("division by zero")
    return base**e


def is_number_notation(text: str) -> bool:
    """True when ``text`` writes one number in another notation rather than a calculation to be done.

    Powers (`10^6`, `2^{10}`), fractions (`\\frac{50}{2}`, `84/2`), scientific notation (`2\\times10^{6}`)
    and a sign are notation; a sum, difference, product or factorial (`47+8-15`, `6*7`, `5!`) is the
    unsimplified calculation itself. Accepting those for an integer gold would reward copying an arithmetic
    question into the answer box, so `compare_answers` evaluates only notation.
    """
    try:
        toks = _tokens(text.replace(" ", ""))
    except _NotEvaluable:
        return False
    for i, tok in enumerate(toks):
        prev = toks[i - 1] if i else None
        if tok in ("+", "-") and prev not in (None, "(", "{", "^"):
            return False
        if tok == "*" and toks[i + 1 : i + 3] != ["10", "^"]:
            return False
        if tok == "!":
            return False
    return True


def safe_value(text: str) -> Fraction | None:
    """The exact value of a plain arithmetic answer, or None when it is not plain bounded arithmetic.

    Args:
        text: a normalised answer (spaces, `\\left`, thousands separators already removed).

    Returns:
        The value as a Fraction, or None (letters, functions, roots, oversized numbers, syntax errors).
    """
    text = text.replace(" ", "")
    if not text or len(text) > MAX_CHARS:
        return None
    try:
        parser = _Parser(_tokens(text))
        value = parser.expr()
        if parser.peek() is not None:
            return None
        return value
    except (_NotEvaluable, ZeroDivisionError, ValueError, OverflowError):
        return None
