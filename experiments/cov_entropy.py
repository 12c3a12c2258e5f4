"""Clip-Cov and KL-Cov vs GRPO: policy entropy at equal steps, and accuracy.

    .venv/bin/python experiments/cov_entropy.py --seeds 3
    .venv/bin/python experiments/cov_entropy.py --aggregate-only

Both methods act on the few tokens whose advantage x log-prob covariance is largest, the ones the paper finds
drive entropy collapse. `learner/entropy` is the learner's full-vocabulary entropy on the trained tokens.
"""

from __future__ import annotations

import sys

from harness import Arm, Comparison, Metric, main
from settings import GRPO, budget

CLIP_COV = Arm("clip_cov", "recipes/methods/clip_cov.yaml")
KL_COV = Arm("kl_cov", "recipes/methods/kl_cov.yaml")

COMPARISON = Comparison(
    name="cov_entropy",
    title="Clip-Cov / KL-Cov vs GRPO (tiny model, arithmetic)",
    baseline=GRPO,
    methods=(CLIP_COV, KL_COV),
    budget=budget(),
    metrics=(
        Metric("entropy, last 5 steps", "learner/entropy", "last_mean:5"),
        Metric("held-out accuracy (avg@16)", "eval/accuracy"),
        Metric("train accuracy (last 10 steps)", "accuracy/mean", "last_mean:10"),
    ),
    curves=(("learner/entropy", "policy entropy (nats/token)"), ("accuracy/mean", "train accuracy")),
)

if __name__ == "__main__":
    main(COMPARISON, sys.argv[1:])
