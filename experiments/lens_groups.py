"""LENS vs GRPO: how many samples carry a gradient (all-wrong groups learn under LENS), and hard-level accuracy.

    .venv/bin/python experiments/lens_groups.py --seeds 3
    .venv/bin/python experiments/lens_groups.py --aggregate-only

`advantage/zero_frac` is measured by the run: the fraction of samples whose advantage is exactly 0. Under GRPO
that is every sample of an all-right or all-wrong group; LENS gives all-wrong groups de-meaned, confidence-
calibrated rewards. The held-out accuracy is broken down by difficulty level (6 is the hardest).
"""

from __future__ import annotations

import sys

from harness import Arm, Comparison, Metric, main
from settings import GRPO, budget

LENS = Arm("lens", "recipes/methods/lens.yaml")


def nonzero_frac(row: dict) -> float | None:
    value = row.get("advantage/zero_frac")
    return None if value is None else 1.0 - value


COMPARISON = Comparison(
    name="lens_groups",
    title="LENS vs GRPO (tiny model, arithmetic)",
    baseline=GRPO,
    methods=(LENS,),
    budget=budget(),
    metrics=(
        Metric("samples with a non-zero advantage (mean over steps)", "advantage/nonzero_frac", "mean"),
        Metric("all-wrong groups (mean over steps)", "accuracy/all_wrong_groups", "mean"),
        Metric("held-out accuracy, level 6 (hardest)", "eval/accuracy/difficulty/6"),
        Metric("held-out accuracy, level 5", "eval/accuracy/difficulty/5"),
        Metric("held-out accuracy (avg@16)", "eval/accuracy"),
    ),
    curves=(
        ("advantage/nonzero_frac", "samples with non-zero advantage"),
        ("accuracy/all_wrong_groups", "all-wrong groups"),
        ("accuracy/mean", "train accuracy"),
    ),
    derived=(("advantage/nonzero_frac", nonzero_frac),),
)

if __name__ == "__main__":
    main(COMPARISON, sys.argv[1:])
