"""Write the project's own GSM8K-format word problems (`question`, `answer` ending `#### n`).

The CPU real-model recipe (`recipes/smollm2_gsm8k.yaml`) trains and evaluates on these files, so a laptop
user needs no dataset download. The problems are generated from templates with a fixed seed (one- and
two-step arithmetic stories, as in GSM8K's easiest items); re-running this script rewrites the same files:

    python scripts/make_word_problems.py            # recipes/data/word_problems_{train,test}.jsonl
"""

from __future__ import annotations

import json
import random
from pathlib import Path

NAMES = ["Ava", "Ben", "Chloe", "Diego", "Emma", "Farid", "Grace", "Hiro", "Ines", "Jon", "Kemal", "Lena"]
ITEMS = ["apples", "stickers", "marbles", "books", "pencils", "cookies", "shells", "cards", "stamps", "coins"]


def _buy(rng: random.Random) -> tuple[str, str, int]:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    a, b = rng.randint(3, 60), rng.randint(2, 40)
    q = f"{name} has {a} {item} and buys {b} more. How many {item} does {name} have now?"
    return q, f"{name} has {a} + {b} = <<{a}+{b}={a + b}>>{a + b} {item}.", a + b


def _give(rng: random.Random) -> tuple[str, str, int]:
    name, other, item = *rng.sample(NAMES, 2), rng.choice(ITEMS)
    a = rng.randint(20, 90)
    b = rng.randint(2, a - 1)
    q = f"{name} had {a} {item} and gave {b} of them to {other}. How many {item} does {name} have left?"
    return q, f"{name} has {a} - {b} = <<{a}-{b}={a - b}>>{a - b} {item} left.", a - b


def _boxes(rng: random.Random) -> tuple[str, str, int]:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    a, b = rng.randint(2, 12), rng.randint(3, 15)
    q = f"{name} fills {a} boxes with {b} {item} each. How many {item} are in the boxes?"
    return q, f"There are {a} * {b} = <<{a}*{b}={a * b}>>{a * b} {item}.", a * b


def _share(rng: random.Random) -> tuple[str, str, int]:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    per, k = rng.randint(2, 12), rng.randint(2, 8)
    total = per * k
    q = f"{name} shares {total} {item} equally among {k} friends. How many {item} does each friend get?"
    return q, f"Each friend gets {total} / {k} = <<{total}/{k}={per}>>{per} {item}.", per


def _two_step(rng: random.Random) -> tuple[str, str, int]:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    packs, per, used = rng.randint(2, 9), rng.randint(4, 12), rng.randint(1, 15)
    total = packs * per
    used = min(used, total - 1)
    q = (
        f"{name} buys {packs} packs of {item} with {per} in each pack, then uses {used} of them. "
        f"How many {item} are left?"
    )
    a = (
        f"{name} buys {packs} * {per} = <<{packs}*{per}={total}>>{total} {item}.\n"
        f"After using {used}, {total} - {used} = <<{total}-{used}={total - used}>>{total - used} are left."
    )
    return q, a, total - used


def _price(rng: random.Random) -> tuple[str, str, int]:
    name = rng.choice(NAMES)
    n, price, paid_extra = rng.randint(2, 9), rng.randint(2, 15), rng.randint(1, 20)
    cost = n * price
    paid = cost + paid_extra
    q = f"{name} buys {n} notebooks at ${price} each and pays with ${paid}. How much change does {name} get?"
    a = (
        f"The notebooks cost {n} * {price} = <<{n}*{price}={cost}>>{cost} dollars.\n"
        f"The change is {paid} - {cost} = <<{paid}-{cost}={paid_extra}>>{paid_extra} dollars."
    )
    return q, a, paid_extra


TEMPLATES = [_buy, _give, _boxes, _share, _two_step, _price]


def make(n: int, seed: int, exclude: set[str] | None = None) -> list[dict[str, object]]:
    """``n`` distinct problems (questions not in ``exclude``) as GSM8K rows."""
    rng, rows, seen = random.Random(seed), [], set(exclude or ())
    while len(rows) < n:
        template = rng.choice(TEMPLATES)
        question, reasoning, value = template(rng)
        if question in seen:
            continue
        seen.add(question)
        steps = reasoning.count("<<")
        rows.append({"question": question, "answer": f"{reasoning}\n#### {value}", "difficulty": steps})
    return rows


def main() -> None:
    out = Path(__file__).resolve().parent.parent / "recipes" / "data"
    out.mkdir(parents=True, exist_ok=True)
    test = make(100, seed=1)
    train = make(1000, seed=2, exclude={r["question"] for r in test})
    for name, rows in (("train", train), ("test", test)):
        path = out / f"word_problems_{name}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        print(f"{path}: {len(rows)} rows")


if __name__ == "__main__":
    main()
