"""Verification throughput: the sandboxed VerifierPool vs a plain in-process Math-Verify loop.

    .venv/bin/python bench/bench_rewards.py               # 2,000 items, 2 workers
    .venv/bin/python bench/bench_rewards.py --items 200   # quick check

Both sides score the same items (MATH- and GSM8K-style answers, ~half correct). The baseline is what
other frameworks do in the trainer: `verify(parse(gold), parse(completion))` in a loop, with Math-Verify's
signal timeouts (main thread only). The pool adds answer extraction, guards and process isolation;
its start-up time is reported separately and excluded from items/s.
"""

from __future__ import annotations

import argparse
import random
import time

from rlvr.reward.sandbox import VerifierPool, VerifyItem

TEMPLATES = [
    ("\\frac{{{a}}}{{{b}}}", "\\frac{{{a}}}{{{b}}}"),
    ("{a}.5", "{a}.5"),
    ("\\sqrt{{{a}}}", "\\sqrt{{{a}}}"),
    ("{a}\\pi", "{a}\\pi"),
    ("(-\\infty, {a}]", "(-\\infty, {a}]"),
    ("\\{{{a}, {b}\\}}", "\\{{{b}, {a}\\}}"),
    ("({a}, {b})", "({a},{b})"),
    ("x={a}", "{a}"),
    ("{a},{b:03d}", "{a}{b:03d}"),
    ("{a}^\\circ", "{a}"),
    # Benchmark answer shapes (docs/rewards.md): wrappers, choice letters, leading zeros, equations, values.
    ("\\textbf{{({a})}}", "{a}"),
    ("(C) {a}", "{a}"),
    ("0{a}", "{a}"),
    ("m+n={a}", "{a}"),
    ("{a}\\times 10^{{2}}", "{a}00"),
]


def make_items(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """`n` (completion, gold) pairs; every other prediction is perturbed so it is wrong."""
    rng = random.Random(seed)
    items = []
    for i in range(n):
        pred_t, gold_t = TEMPLATES[i % len(TEMPLATES)]
        a, b = rng.randint(2, 99), rng.randint(2, 99)
        gold = gold_t.format(a=a, b=b)
        pred = pred_t.format(a=a + (i % 2), b=b)
        if i % 3 == 0:
            completion = f"Reasoning step {i}...\n#### {pred}"
        else:
            completion = f"Reasoning step {i}... so the answer is $\\boxed{{{pred}}}$."
        items.append((completion, gold))
    return items


def bench_in_process(items: list[tuple[str, str]]) -> tuple[float, int]:
    """Seconds and correct count for a plain Math-Verify loop in this process."""
    from math_verify import parse, verify

    start = time.perf_counter()
    correct = sum(bool(verify(parse(f"\\boxed{{{gold}}}"), parse(completion))) for completion, gold in items)
    return time.perf_counter() - start, correct


def bench_pool(items: list[tuple[str, str]], workers: int) -> tuple[float, float, int]:
    """Start-up seconds, scoring seconds and correct count for the sandboxed pool (`gsm8k` reward)."""
    start = time.perf_counter()
    with VerifierPool(workers=workers, timeout_s=10, preload=("gsm8k",)) as pool:
        pool.wait_ready()
        ready = time.perf_counter()
        results = pool.score([VerifyItem(c, g, "gsm8k") for c, g in items])
        done = time.perf_counter()
    return ready - start, done - ready, sum(r.correct for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    items = make_items(args.items)
    # Warm both paths' lazy imports so neither side pays them inside the timed region.
    bench_in_process(items[:5])
    base_s, base_correct = bench_in_process(items)
    start_s, pool_s, pool_correct = bench_pool(items, args.workers)
    base_rate, pool_rate = len(items) / base_s, len(items) / pool_s
    print(f"items: {len(items)}  workers: {args.workers}")
    print(f"in-process math-verify: {base_rate:8.1f} items/s  ({base_s:.2f} s, {base_correct} correct)")
    print(f"VerifierPool:           {pool_rate:8.1f} items/s  ({pool_s:.2f} s, {pool_correct} correct)")
    print(f"pool start-up (excluded): {start_s:.2f} s")
    print(f"ratio pool / in-process: {pool_rate / base_rate:.2f}x")


if __name__ == "__main__":
    main()
