"""ERC vs DAPO-style clipping, both with 4 optimizer updates per step (off-policy): entropy and grad-norm
steadiness.

    .venv/bin/python experiments/erc_offpolicy.py --seeds 3
    .venv/bin/python experiments/erc_offpolicy.py --aggregate-only

Both arms are `recipes/methods/erc.yaml` (DAPO clip 0.2 / 0.28, dual-clip 10, token mean, 4 updates per
step); the baseline sets `algorithm.erc` to null. Steadiness is the standard deviation over steps of a run's
per-step figure (`learner/entropy`, `learner/grad_norm`, the latter averaged over the step's 4 updates).
"""

from __future__ import annotations

import sys

from harness import Arm, Comparison, Metric, main
from settings import budget

DAPO4 = Arm("dapo_4upd", "recipes/methods/erc.yaml", {"algorithm": {"erc": None}})
ERC = Arm("erc", "recipes/methods/erc.yaml")

COMPARISON = Comparison(
    name="erc_offpolicy",
    title="ERC vs DAPO clipping, 4 updates per step (tiny model, arithmetic)",
    baseline=DAPO4,
    methods=(ERC,),
    budget=budget(),
    metrics=(
        Metric("entropy sd over steps", "learner/entropy", "sd"),
        Metric("grad-norm sd over steps", "learner/grad_norm", "sd"),
        Metric("grad norm, mean over steps", "learner/grad_norm", "mean"),
        Metric("entropy, last 5 steps", "learner/entropy", "last_mean:5"),
        Metric("held-out accuracy (avg@16)", "eval/accuracy"),
        Metric("tokens keeping their gradient under ERC (mean over steps)", "learner/erc_kept_frac", "mean"),
    ),
    curves=(("learner/entropy", "policy entropy (nats/token)"), ("learner/grad_norm", "grad norm")),
)

if __name__ == "__main__":
    main(COMPARISON, sys.argv[1:])
