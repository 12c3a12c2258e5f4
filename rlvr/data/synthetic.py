"""Synthetic verifiable arithmetic task: word-free integer expressions solved by a short chain.

A problem is an expression such as ``47+8-15``; the reference response evaluates it left to right,
one binary step per line, and ends with ``\\boxed{<integer>}``::

    47+8=55
    55-15=40
    \\boxed{40}

Difficulty levels (``LEVELS``) vary the number of operands, digits and operators, so one batch holds
prompts the tiny model always solves, never solves, and sometimes solves (the groups RL learns from),
and response lengths vary with the number of steps. Multiplication only ever appears as the first
operation, so left-to-right evaluation equals the usual precedence. Generation is deterministic
given a seed; train and test splits never share an expression.

Two prompt sources, two answer conventions. Half the problems are asked as a bare expression
(``plain`` style, reference always boxed) and half as ``What is 47+8-15?`` (``question`` style),
whose references end like GSM8K's ``#### 40`` in ``HASH_ANSWER_FRACTION`` of the rows and boxed in
the rest. The checker (like the ``math`` reward) accepts only ``\\boxed{}``. This reproduces, on
purpose, what happens when a real model is fine-tuned on mixed GSM8K/MATH-style data: the SFT model
answers question-style prompts in the unverifiable convention under greedy decoding, while sampling
still finds the boxed one sometimes; RLVR's job is to turn that into the verifiable habit, on top of
making each arithmetic step more reliable. Evaluation reports both styles separately, so the two
effects can be told apart.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

DATA_SOURCE = "synthetic"


@dataclass(frozen=True)
class Level:
    """One difficulty level.

    Attributes:
        operands: Number of operands (steps = operands - 1).
        digits: (min, max) digits per additive operand.
        mul: Whether the first operation is a multiplication by a one-digit number.
        sub: Whether subtraction may appear.
    """

    operands: int
    digits: tuple[int, int]
    mul: bool = False
    sub: bool = True


# Fraction of problems asked in the ``question`` style, and fraction of those whose reference ends with
# ``#### n`` instead of ``\\boxed{n}`` (see the module docstring).
QUESTION_FRACTION = 0.5
HASH_ANSWER_FRACTION = 0.7


# Ordered from trivial to out of reach for a ~1 M-parameter char model after a short SFT. Most
# steps add or subtract one digit, so a small model can learn each step; errors compound over the
# chain, so accuracy falls with length and RL has per-step reliability to improve.
LEVELS: dict[int, Level] = {
    1: Level(operands=3, digits=(1, 1), sub=False),
    2: Level(operands=3, digits=(1, 1)),
    3: Level(operands=4, digits=(1, 1)),
    4: Level(operands=5, digits=(1, 1)),
    5: Level(operands=3, digits=(1, 2)),
    6: Level(operands=4, digits=(2, 2)),
}


@dataclass(frozen=True)
class Problem:
    """A generated problem with its reference chain-of-thought response (in its source's convention)."""

    prompt: str
    answer: int
    response: str
    difficulty: int
    expression: str
    style: str

    def row(self) -> dict:
        """The dataset row schema shared with the real loaders (plus ``response`` for SFT)."""
        return {
            "prompt": self.prompt,
            "answer": str(self.answer),
            "difficulty": self.difficulty,
            "data_source": DATA_SOURCE,
            "prompt_style": self.style,
            "response": self.response,
        }


def _operand(rng: random.Random, digits: tuple[int, int]) -> int:
    n = rng.randint(*digits)
    return rng.randint(0 if n == 1 else 10 ** (n - 1), 10**n - 1)


def make_problem(rng: random.Random, level: int) -> Problem:
    """Draw one problem of the given difficulty level.

    Args:
        rng: Source of randomness (the only one used, for determinism).
        level: A key of ``LEVELS``.

    Returns:
        The problem, its integer answer and the reference response.
    """
    spec = LEVELS[level]
    value = _operand(rng, spec.digits)
    expr, lines = str(value), []
    for step in range(spec.operands - 1):
        if step == 0 and spec.mul:
            op, rhs = "*", rng.randint(2, 9)
        else:
            op, rhs = ("-" if spec.sub and rng.random() < 0.5 else "+"), _operand(rng, spec.digits)
        new = value * rhs if op == "*" else value - rhs if op == "-" else value + rhs
        lines.append(f"{value}{op}{rhs}={new}")
        expr += f"{op}{rhs}"
        value = new
    final = f"\\boxed{{{value}}}"
    if rng.random() < QUESTION_FRACTION:
        style, prompt = "question", f"What is {expr}?"
        if rng.random() < HASH_ANSWER_FRACTION:
            final = f"#### {value}"
    else:
        style, prompt = "plain", expr
    response = "\n".join([*lines, final])
    return Problem(
        prompt=prompt, answer=value, response=response, difficulty=level, expression=expr, style=style
    )


def generate(
    n: int, seed: int, levels: Iterable[int] | None = None, exclude: set[str] | None = None
) -> list[Problem]:
    """Generate ``n`` distinct problems, cycling through ``levels`` so each is equally represented.

    A level whose problem space is exhausted (many draws in a row are duplicates) leaves the
    rotation, so small levels contribute what they have.

    Args:
        n: Number of problems.
        seed: RNG seed (same seed, same list).
        levels: Difficulty levels to draw from (default: all).
        exclude: Expressions that must not appear (e.g. the test split's, when generating train).

    Returns:
        The problems, in generation order.
    """
    rng = random.Random(seed)
    active = sorted(levels or LEVELS)
    seen = set(exclude or ())
    out: list[Problem] = []
    turn = 0
    while len(out) < n:
        if not active:
            raise ValueError(f"could not draw {n} distinct problems from levels {sorted(levels or LEVELS)}")
        level = active[turn % len(active)]
        for _ in range(200):
            prob = make_problem(rng, level)
            if prob.expression not in seen:
                seen.add(prob.expression)
                out.append(prob)
                turn += 1
                break
        else:
            active.remove(level)
    return out


def make_splits(n_train: int, n_test: int, seed: int = 0) -> tuple[list[Problem], list[Problem]]:
    """Fixed train / held-out test splits with no shared expression (in either style).

    The test split is drawn first from its own seed, so its content does not depend on ``n_train``.
    """
    test = generate(n_test, seed=seed * 2 + 1)
    train = generate(n_train, seed=seed * 2 + 2, exclude={p.expression for p in test})
    return train, test


def write_jsonl(rows: Iterable[dict], path: str | Path) -> Path:
    """Write rows as one JSON object per line (parent dirs created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
    return path


def read_jsonl(path: str | Path) -> Iterator[dict]:
    """Yield the rows of a jsonl file."""
    with Path(path).open() as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


# The canonical splits (used by the tiny build and by ``source: synthetic`` datasets).
N_TRAIN = 20000
N_TEST = 500
DATA_SEED = 0


def canonical_split(split: str) -> list[Problem]:
    """The project's fixed synthetic ``train`` or ``test`` split."""
    train, test = make_splits(N_TRAIN, N_TEST, seed=DATA_SEED)
    splits = {"train": train, "test": test}
    if split not in splits:
        raise KeyError(f"synthetic split {split!r} does not exist; choose from {sorted(splits)}")
    return splits[split]
