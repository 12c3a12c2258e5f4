"""Table-driven verification of the built-in math rewards, run through the real sandboxed pool."""

from __future__ import annotations

import pytest

from rlvr.reward.sandbox import VerifierPool, VerifyItem


def B(ans: str) -> str:
    """A MATH-style response ending in a boxed answer."""
    return f"Let me work through it step by step.\nSo the result is $\\boxed{{{ans}}}$."


# (completion, gold, expected correct)
GSM8K = [
    ("She has 5 + 7 = 12 apples.\n#### 12", "12", True),
    ("#### 1,234", "1234", True),
    ("#### 1234", "1,234", True),
    ("#### 1,000,000", "1000000", True),
    ("#### -5", "-5", True),
    ("#### −5", "-5", True),
    ("#### 5", "-5", False),
    ("#### 42.0", "42", True),
    ("#### 42.00", "42", True),
    ("#### 42.5", "42", False),
    ("#### $18", "18", True),
    ("#### \\$18", "18", True),
    ("#### 18 dollars", "18", True),
    ("#### 18.", "18", True),
    ("#### 18 ", "18", True),
    ("#### 180", "18", False),
    ("#### 1.8", "18", False),
    ("#### 84/2", "42", True),  # exact value of plain arithmetic (docs/rewards.md)
    ("#### 84/3", "42", False),
    ("#### ", "42", False),
    ("no marker 42", "42", False),
    ("The answer is 42", "42", False),
    ("#### 18\nWait, actually 20.", "18", True),
    ("First #### 10 then #### 12", "12", True),
    ("#### 10\nhmm\n#### 12", "10", False),
    ("Answer: 42", "42", True),
    ("answer: 7", "7", True),
    ("The answer is: 7", "7", True),
    ("Answer: 8", "7", False),
    ("So \\boxed{72}.", "72", True),
    ("So \\boxed{72}.", "Natalia sold 48/2 = 24 clips.\n#### 72", True),
    ("#### 72", "Natalia sold 48/2 = 24 clips.\n#### 72", True),
    ("#### 71", "Natalia sold 48/2 = 24 clips.\n#### 72", False),
    ("#### 20%", "20", True),
    ("#### 20 percent", "20", False),
    ("#### 0.5", "0.5", True),
    ("#### .5", "0.5", True),
    ("#### 1/2", "0.5", True),
    ("#### 3 hours", "3", True),
    ("#### 3 cm", "3", True),
    ("#### 3 x", "3", False),
    ("#### 1 000", "1000", True),
    ("#### 5", ["5", "five"], True),
    ("#### 6", ["5", "five"], False),
    ("#### 1e3", "1000", True),
    ("#### 1e2", "1000", False),
    ("#### 7\x00", "7", True),
    ("<think>hmm</think> #### 9", "9", True),
    ("#### 1,23", "123", False),
    ("#### 12,345.5", "12345.5", True),
    ("#### 0", "0", True),
    ("#### -0", "0", True),
]

MATH = [
    (B("\\frac{1}{2}"), "\\frac{1}{2}", True),
    (B("\\dfrac{1}{2}"), "\\frac{1}{2}", True),
    (B("\\tfrac{1}{2}"), "\\frac12", True),
    (B("\\frac12"), "\\frac{1}{2}", True),
    (B("1/2"), "\\frac{1}{2}", True),
    (B("0.5"), "\\frac{1}{2}", True),
    (B("\\frac{2}{4}"), "\\frac{1}{2}", True),
    (B("\\frac{1}{3}"), "\\frac{1}{2}", False),
    (B("0.33"), "\\frac{1}{3}", False),
    (B("-\\frac{3}{4}"), "-\\frac{3}{4}", True),
    (B("\\frac{-3}{4}"), "-\\frac{3}{4}", True),
    (B("\\frac{3}{4}"), "-\\frac{3}{4}", False),
    (B("\\sqrt{2}"), "\\sqrt{2}", True),
    (B("\\sqrt2"), "\\sqrt{2}", True),
    (B("2^{1/2}"), "\\sqrt{2}", True),
    (B("\\frac{\\sqrt{2}}{2}"), "\\frac{1}{\\sqrt{2}}", True),
    (B("\\sqrt{3}"), "\\sqrt{2}", False),
    (B("2\\sqrt{3}"), "\\sqrt{12}", True),
    (B("3\\sqrt{2}"), "2\\sqrt{3}", False),
    (B("\\pi"), "\\pi", True),
    (B("2\\pi"), "2\\pi", True),
    (B("\\pi \\cdot 2"), "2\\pi", True),
    (B("3\\pi"), "2\\pi", False),
    (B("\\frac{\\pi}{2}"), "\\frac{\\pi}{2}", True),
    (B("\\frac{\\pi}{3}"), "\\frac{\\pi}{2}", False),
    (B("4\\pi r^2"), "4\\pi r^2", True),
    (B("(-\\infty, 3]"), "(-\\infty, 3]", True),
    (B("(-\\infty,3]"), "(-\\infty, 3]", True),
    (B("(-\\infty, 3)"), "(-\\infty, 3]", False),
    (B("[2, 5)"), "[2,5)", True),
    (B("[2, 5]"), "[2,5)", False),
    (B("(0, \\infty)"), "(0,\\infty)", True),
    (B("(-\\infty,-1)\\cup(1,\\infty)"), "(-\\infty,-1)\\cup(1,\\infty)", True),
    (B("\\{1, 2, 3\\}"), "\\{1,2,3\\}", True),
    (B("\\{3, 2, 1\\}"), "\\{1,2,3\\}", True),
    (B("\\{1, 2\\}"), "\\{1,2,3\\}", False),
    (B("1, 2, 3"), "1,2,3", True),
    (B("3, 2, 1"), "1, 2, 3", True),
    (B("1, 2"), "1, 2, 3", False),
    (B("(1, 2)"), "(1,2)", True),
    (B("(2, 1)"), "(1,2)", False),
    (B("(1, -2, 3)"), "(1,-2,3)", True),
    (B("(1, 2, 3)"), "(1,-2,3)", False),
    (B("30^\\circ"), "30", True),
    (B("30^{\\circ}"), "30^\\circ", True),
    (B("30"), "30^\\circ", True),
    (B("60^\\circ"), "30^\\circ", False),
    (B("45\\%"), "45", True),
    (B("45"), "45\\%", True),
    (B("12.5\\%"), "12.5", True),
    (B("12.5"), "12.5\\%", True),
    (B("13.5\\%"), "12.5", False),
    (B("5\\text{ cm}"), "5", True),
    (B("5 \\text{cm}"), "5", True),
    (B("5\\text{ inches}"), "5", True),
    (B("6\\text{ cm}"), "5", False),
    (B("10\\text{ square units}"), "10", True),
    (B("\\text{(B)}"), "\\text{(B)}", True),
    (B("(B)"), "\\text{(B)}", True),
    (B("\\text{(C)}"), "\\text{(B)}", False),
    (B("\\text{Monday}"), "\\text{Monday}", True),
    (B("\\text{Tuesday}"), "\\text{Monday}", False),
    (B("6.02\\times10^{23}"), "6.02\\times 10^{23}", True),
    (B("6.02 \\times 10^{23}"), "6.02\\times10^{23}", True),
    (B("6.02e23"), "6.02\\times10^{23}", True),
    (B("6.02E23"), "6.02\\times10^{23}", True),
    (B("6.02e22"), "6.02\\times10^{23}", False),
    (B("1.5\\times10^{-3}"), "0.0015", True),
    (B("x=3"), "3", True),
    (B("x = 3"), "3", True),
    (B("x=4"), "3", False),
    (B("y = 2x + 1"), "y=2x+1", True),
    (B("2x+1"), "y=2x+1", True),
    (B("2x-1"), "y=2x+1", False),
    (B("x^2+2x+1"), "(x+1)^2", True),
    (B("x^2+1"), "(x+1)^2", False),
    (B("a+b"), "b+a", True),
    (B("1,000"), "1000", True),
    (B("1{,}000"), "1000", True),
    (B("1\\,000\\,000"), "1000000", True),
    (B("1\\!000"), "1000", True),
    (B("100"), "1000", False),
    (B("-7"), "-7", True),
    (B("7"), "-7", False),
    (B("\\left( 1, 2 \\right)"), "(1,2)", True),
    (B("\\$5.50"), "5.50", True),
    (B("5.5"), "5.50", True),
    (B("5.05"), "5.50", False),
    (B("0.25"), "\\frac14", True),
    (B("25"), "\\frac14", False),
    (B("\\frac{7}{2}"), "3.5", True),
    (B("3\\frac{1}{2}"), "\\frac{7}{2}", True),
    (B("\\infty"), "\\infty", True),
    (B("-\\infty"), "\\infty", False),
    (B("i"), "i", True),
    (B("1+i"), "1+i", True),
    (B("1-i"), "1+i", False),
    (B("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}"), "\\begin{pmatrix}1\\\\2\\end{pmatrix}", True),
    (B("\\begin{pmatrix} 2 \\\\ 1 \\end{pmatrix}"), "\\begin{pmatrix}1\\\\2\\end{pmatrix}", False),
    (B("\\log_2 8"), "3", False),
    (B("\\frac{84}{2}"), "42", True),
    (B("\\frac{84}{3}"), "42", False),
    (B("42"), "42", True),
    (B("043"), "43", True),
    (B("\\boxed{5}"), "5", True),
    ("\\boxed{10}. Wait, that's wrong. \\boxed{12}", "12", True),
    ("\\boxed{10}. Wait, that's wrong. \\boxed{12}", "10", False),
    ("\\boxed{10} and \\boxed{12}", "\\{10, 12\\}", False),
    ("\\fbox{7}", "7", True),
    ("\\boxed 7.", "7", True),
    ("So $\\boxed{\\frac{1}{2}}", "\\frac{1}{2}", True),
    ("\\boxed{\\frac{1}{2}", "\\frac{1}{2}", False),
    ("The answer is 7.", "7", False),
    ("$7$", "7", False),
    ("", "7", False),
    ("\\boxed{}", "7", False),
    ("\\boxed{ }", "7", False),
    (B("7"), "\\boxed{7}", True),
    (B("8"), "\\boxed{7}", False),
    (B("7"), ["6", "7"], True),
    (B("\\frac{1}{2}"), ["0.5", "1/2"], True),
    (B("0.4"), ["0.5", "1/2"], False),
    (B("\\sqrt{8}"), "2\\sqrt{2}", True),
    (B("\\frac{1}{\\sqrt{3}}"), "\\frac{\\sqrt{3}}{3}", True),
    (B("\\frac{\\sqrt{3}}{2}"), "\\frac{\\sqrt{3}}{3}", False),
    (B("x \\in [1, 2]"), "[1,2]", True),
    (B("[1, 2]"), "1 \\le x \\le 2", True),
    (B("k"), "k", True),
    (B("\\text{odd}"), "\\text{even}", False),
    (B("9^{9^{9^{9}}}"), "9", False),
    (B("10^{100000}"), "10", False),
    (B("x = 3, y = 4"), "(3,4)", True),
    (B("x = 4, y = 3"), "(3,4)", False),
]

THINK = [
    ("<think>reasoning</think>\n\\boxed{4}", "4", True),
    ("<think>I think \\boxed{4}", "4", False),
    ("<think>a</think><think>b</think> \\boxed{4}", "4", True),
    ("<think>\\boxed{5}</think> so \\boxed{4}", "4", True),
    ("<think>\\boxed{4}</think> so nothing", "4", False),
    ("\\boxed{4}", "4", False),
]

LONG_TAIL = [
    ("\\boxed{3} " + "filler " * 200, "3", False),
    ("x" * 5000 + " \\boxed{3}", "3", True),
]

CASES = (
    [("gsm8k", {}, *c) for c in GSM8K]
    + [("math", {}, *c) for c in MATH]
    + [("math", {"think": True}, *c) for c in THINK]
    + [("math", {}, *c) for c in LONG_TAIL]
)


def test_table_size() -> None:
    assert len(CASES) >= 150


def test_math_cases_through_pool(pool: VerifierPool) -> None:
    # A generous Math-Verify timeout: these cases are about verdicts, and the machine may be loaded.
    items = [VerifyItem(comp, gold, fn, {**kw, "timeout_s": 5}) for fn, kw, comp, gold, _ in CASES]
    results = pool.score(items)
    wrong = [
        f"{fn}{kw or ''} {comp[-60:]!r} vs {gold!r}: expected {exp}, got {r.correct} ({r.extracted!r}, {r.error})"
        for (fn, kw, comp, gold, exp), r in zip(CASES, results)
        if r.correct != exp
    ]
    assert not wrong, f"{len(wrong)} of {len(CASES)} cases wrong:\n" + "\n".join(wrong)
    assert all(not r.failed for r in results)
    # Scores are {0, 1} standalone and match the verdict.
    assert all(r.score == float(r.correct) for r in results)


@pytest.mark.parametrize(
    ("completion", "format_ok"),
    [("\\boxed{1}", True), ("no answer", False), ("\\boxed{1", False)],
)
def test_format_flag(pool: VerifierPool, completion: str, format_ok: bool) -> None:
    (result,) = pool.score([(completion, "1")])
    assert result.format_ok is format_ok


@pytest.mark.parametrize(
    ("completion", "gold", "strict", "flexible"),
    [
        ("Ava has 14 + 9 = 23 apples.", "23", 0.0, 1.0),  # prose answer: only flexible finds it
        ("So 22 apples, no wait, 23", "23", 0.0, 1.0),  # the last number counts
        ("There are 1,234 of them.", "1234", 0.0, 1.0),
        ("The answer is 24.", "23", 0.0, 0.0),
        ("no number at all", "23", 0.0, 0.0),
        ("#### 23\nThen 5 more steps", "23", 1.0, 1.0),  # a marked answer wins over a later number
    ],
)
def test_flexible_style_falls_back_to_the_last_number(completion, gold, strict, flexible) -> None:
    from rewards.math import gsm8k_reward

    assert gsm8k_reward(completion, answer=gold).score == strict
    assert gsm8k_reward(completion, answer=gold, style="flexible").score == flexible
