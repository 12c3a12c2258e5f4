"""Labelled (completion, gold, must_accept) pairs for the answer classes real benchmarks produce.

Grouped by class; each class's rule is written in docs/rewards.md. Every class has pairs in both
directions: the answer that must be accepted and the near miss that must be rejected.
"""

from __future__ import annotations


def B(ans: str) -> str:
    """A MATH-style response ending in a boxed answer."""
    return f"We simplify and check the cases.\nTherefore the answer is $\\boxed{{{ans}}}$."


# ---- answer wrappers: formatting commands, parenthesised numbers, \text{} with a count word ----
WRAPPERS = [
    (B("\\textbf{(113)}"), "113", True),
    (B("\\textbf{(113)}"), "114", False),
    (B("\\mathbf{127}"), "127", True),
    (B("\\mathbf{127}"), "126", False),
    (B("\\textbf{127}"), "127", True),
    (B("\\text{12 apples}"), "12", True),
    (B("\\text{13 apples}"), "12", False),
    (B("\\text{12}"), "12", True),
    (B("\\mathrm{12}"), "12", True),
    (B("\\boldsymbol{8}"), "8", True),
    (B("\\boldsymbol{9}"), "8", False),
    (B("(113)"), "113", True),
    (B("(112)"), "113", False),
    (B("\\textbf{(\\frac{1}{2})}"), "\\frac{1}{2}", True),
    (B("\\mathbf{\\frac{1}{3}}"), "\\frac{1}{2}", False),
    (B("\\textbf{12 cookies}"), "12", True),
    (B("\\text{\\textbf{45}}"), "45", True),
    (B("\\text{\\textbf{46}}"), "45", False),
    (B("\\underline{21}"), "21", True),
    (B("\\mathbf{-4}"), "-4", True),
    (B("\\mathbf{4}"), "-4", False),
]

# ---- multiple choice (AMC): golds as a letter or as the value; both are supported ----
CHOICES = [
    (B("(C) 12"), "12", True),
    (B("(C) 12"), "13", False),
    (B("(C) 12"), "C", True),
    (B("(C) 12"), "(C)", True),
    (B("(C) 12"), "D", False),
    (B("\\textbf{(C) }12"), "C", True),
    (B("\\textbf{(C) }12"), "12", True),
    (B("\\textbf{(C)}~12"), "12", True),
    (B("\\textbf{(D)}~12"), "C", False),
    (B("\\text{(B)}"), "B", True),
    (B("\\text{(B)}"), "\\textbf{(B)}", True),
    (B("\\text{(B)}"), "A", False),
    (B("B"), "(B)", True),
    (B("E"), "(B)", False),
    (B("\\mathrm{(E)}\\ 7"), "E", True),
    (B("\\mathrm{(E)}\\ 7"), "7", True),
    (B("\\mathrm{(E)}\\ 8"), "7", False),
    (B("(C)"), "12", False),
    (B("12"), "C", False),
    (B("(A) \\frac{1}{2}"), "\\frac{1}{2}", True),
    (B("(A) \\frac{1}{3}"), "\\frac{1}{2}", False),
    (B("A) 5"), "5", True),
    (B("A) 5"), "A", True),
    (B("\\textbf{(A) } 5"), "(B) 5", False),
    (B("\\textbf{(B) } 5"), "(B) 5", True),
]

# ---- AIME leading zeros, both directions ----
LEADING_ZEROS = [
    (B("73"), "073", True),
    (B("073"), "73", True),
    (B("073"), "073", True),
    (B("7"), "007", True),
    (B("007"), "7", True),
    (B("70"), "007", False),
    (B("730"), "073", False),
    (B("037"), "73", False),
    (B("0"), "000", True),
    (B("\\textbf{(073)}"), "73", True),
    (B("\\mathbf{033}"), "33", True),
    (B("\\mathbf{033}"), "303", False),
]

# ---- an equation as the answer: the right side, when the left side names unknowns ----
EQUATIONS = [
    (B("m+n=113"), "113", True),
    (B("m+n=113"), "114", False),
    (B("m + n = 113"), "113", True),
    (B("a+b+c = 12"), "12", True),
    (B("a+b+c = 13"), "12", False),
    (B("x = 5"), "5", True),
    (B("x = -5"), "5", False),
    (B("p_1 + q_1 = 30"), "30", True),
    (B("100m+n = 2024"), "2024", True),
    (B("100m+n = 2025"), "2024", False),
    (B("f(3) = 7"), "7", True),
    (B("f(3) = 8"), "7", False),
    (B("r = \\frac{3}{2}"), "\\frac{3}{2}", True),
    (B("r = \\frac{2}{3}"), "\\frac{3}{2}", False),
    (B("AB = 10"), "10", True),
    (B("2+3=5"), "5", True),
    (B("2+3=6"), "6", False),
    (B("m+n=25+8=033"), "33", True),
    (B("m+n = 25+9 = 33"), "33", False),
    (B("m+n=25+8=34"), "34", False),
    (B("x = 5 = y"), "5", False),
    (B("y = 2x + 1"), "y = 2x + 1", True),
    (B("y = 3x + 1"), "y = 2x + 1", False),
    (B("a+b=7"), "\\text{(D)}", False),
]

# ---- the same integer written another way: exact value of safe arithmetic ----
VALUES = [
    (B("10^6"), "1000000", True),
    (B("10^{6}"), "1000000", True),
    (B("10^5"), "1000000", False),
    (B("2^{10}"), "1024", True),
    (B("2^{10}"), "1000", False),
    (B("5^2"), "25", True),
    (B("5^3"), "25", False),
    (B("\\frac{50}{2}"), "25", True),
    (B("\\dfrac{50}{2}"), "25", True),
    (B("\\frac{50}{3}"), "25", False),
    (B("\\frac{49}{2}"), "25", False),
    (B("1{,}000"), "1000", True),
    (B("1{,}001"), "1000", False),
    (B("2 \\times 3^{2}"), "18", False),  # a product is the calculation, not its value
    (B("2 \\cdot 3^{2}"), "19", False),
    (B("5!"), "120", False),  # a factorial is the calculation, not its value
    (B("4!"), "120", False),
    (B("\\frac{10!}{8!}"), "90", False),
    (B("3^{4}-1"), "80", False),  # a difference is the calculation, not its value
    (B("3^{4}+1"), "80", False),
    (B("24.0"), "24", True),
    (B("23.99"), "24", False),
    (B("24.001"), "24", False),
    (B("2^10"), "1024", False),  # ambiguous LaTeX (renders as 2^1 0): not evaluated
    (B("\\sqrt{16}"), "4", False),  # a root is not plain arithmetic: graded as before
    (B("2x"), "4", False),
    (B("10^{-1}"), "0", False),
    (B("1.5\\times 10^{3}"), "1500", True),
    (B("1.5\\times 10^{2}"), "1500", False),
    ("So we get #### 3,000", "3000", True),
    # Copying an arithmetic question into the box must not score: sums, differences, products, factorials
    (B("47+8-15"), "40", False),
    (B("6*7"), "42", False),
    (B("6 \\times 7"), "42", False),
    (B("3 \\cdot 4 + 2"), "14", False),
    ("#### 35-33", "2", False),
    (B("47+8-15=40"), "40", True),  # the value is stated after the calculation
    (B("-5"), "-5", True),
    (B("2\\times 10^{6}"), "2000000", True),
]

# ---- expressions with several powers reach Math-Verify (the tower filter must not refuse them) ----
POLYNOMIALS = [
    (B("(x^2+1)^2"), "x^4+2x^2+1", True),
    (B("(x^2+1)^3"), "x^4+2x^2+1", False),
    (B("x^2+y^2"), "y^2+x^2", True),
    (B("x^2-y^2"), "y^2+x^2", False),
    (B("(a^{2}+b)^{2}"), "a^4+2a^2b+b^2", True),
    (B("(a^{2}-b)^{2}"), "a^4+2a^2b+b^2", False),
]

# ---- reasoning models: only the text after </think> is graded ----
THINK = [
    ("<think>The sum is 12.</think>\nThe answer is \\boxed{12}.", "12", True),
    ("<think>Try \\boxed{12}. Hmm</think>\nThe answer is \\boxed{13}.", "12", False),
    ("<think>Try \\boxed{12}. Hmm", "12", False),
    ("<think>\\boxed{12}</think>\nso that is it.", "12", False),
    ("<think>\\boxed{12}", "12", False),
    ("Reasoning without tags.\n\\boxed{12}", "12", True),
    ("12 apples</think>\nFinal: \\boxed{12}", "12", True),
    ("\\boxed{13} ... </think> \\boxed{12}", "12", True),
    ("<think>a</think><think>b</think> \\boxed{12}", "12", True),
    ("<think>a</think> \\boxed{11}", "12", False),
]

# ---- the same responses with the option `think: off` (the whole response is graded) ----
THINK_OFF = [
    ("<think>Try \\boxed{12}. Hmm", "12", True),
    ("<think>\\boxed{12}</think>\nso that is it.", "12", True),
    ("<think>Try \\boxed{12}.</think> \\boxed{13}", "12", False),
    ("<think>Try \\boxed{11}. Hmm", "12", False),
    ("Reasoning without tags.\n\\boxed{12}", "12", True),
    ("Reasoning without tags.\n\\boxed{21}", "12", False),
]

# ---- R1-style templates end the prompt with <think>: the response must close the block ----
R1_PROMPT = "<|User|>What is 5 + 7?<|Assistant|><think>\n"
THINK_IN_PROMPT = [
    ("5 + 7 = 12.\n</think>\nThe answer is \\boxed{12}.", "12", True),
    ("5 + 7 = 12, so \\boxed{12}", "12", False),
    ("5 + 7 = 12.\n</think>\nThe answer is \\boxed{13}.", "12", False),
    ("5 + 7 = 12.\n</think>\nThe answer is twelve.", "12", False),
]

# ---- must stay wrong ----
MUST_STAY_WRONG = [
    (B("5\\text{ m}"), "5\\text{ cm}", False),
    (B("5 m"), "5 cm", False),
    (B("5\\text{ cm}"), "5\\text{ cm}", True),
    (B("5 centimeters"), "5 cm", True),
    (B("5"), "5 cm", True),
    (B("5\\text{ inches}"), "5\\text{ in}", True),
    (B("5\\text{ feet}"), "5\\text{ in}", False),
    (B("\\{1, 2\\}"), "[1, 2]", False),
    (B("[1, 2]"), "\\{1, 2\\}", False),
    (B("(1, 2)"), "[1, 2]", False),
    (B("0.\\overline{3}"), "0.3", False),
    (B("0.3"), "0.\\overline{3}", False),
    ("\\boxed{12", "12", False),
    ("The answer is \\boxed{12", "12", False),
    ("\\boxed{11} then \\boxed{12", "12", False),
    (B("11.9"), "12", False),
    (B("12.5"), "12", False),
    (B("\\frac{25}{3}"), "8", False),
    (B("8.33"), "\\frac{25}{3}", False),
    (B("1000001"), "1000000", False),
    (B("10^{6}+1"), "1000000", False),
    (B("-12"), "12", False),
    (B("12"), "-12", False),
    (B("\\infty"), "12", False),
    (B("12\\%"), "0.12", False),
    (B("3 hours"), "3 minutes", False),
    (B("3 hours"), "3", True),
    (B("\\text{odd}"), "\\text{even}", False),
    (B("x"), "12", False),
    (B("1,2"), "12", False),
    (B("\\frac{1}{2}"), "0.5", True),
    (B("0.51"), "\\frac{1}{2}", False),
]

CLASSES = {
    "wrappers": WRAPPERS,
    "choices": CHOICES,
    "leading_zeros": LEADING_ZEROS,
    "equations": EQUATIONS,
    "values": VALUES,
    "polynomials": POLYNOMIALS,
    "think": THINK,
    "must_stay_wrong": MUST_STAY_WRONG,
}
# (class, reward kwargs, completion, gold, must_accept)
ALL_CASES = [(name, {}, *case) for name, cases in CLASSES.items() for case in cases] + [
    ("think_off", {"think": "off"}, *case) for case in THINK_OFF
]
