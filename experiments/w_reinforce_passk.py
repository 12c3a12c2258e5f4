"""W-REINFORCE vs GRPO: held-out pass@16 (large k) against pass@1.

    .venv/bin/python experiments/w_reinforce_passk.py --seeds 3
    .venv/bin/python experiments/w_reinforce_passk.py --aggregate-only

W-REINFORCE (arXiv 2506.01347) weights correct answers by lambda = 0.1 and wrong ones by -1, with no baseline
and no normalisation; the paper finds it keeps pass@k at large k where GRPO/PPO narrow the policy. The arm is
`recipes/methods/w_reinforce.yaml`: the quickstart with the `w_reinforce` estimator, PPO clip 0.2 and token mean.
pass@k is the unbiased estimator over the 16 held-out samples per prompt at temperature 1.0.
"""

from __future__ import annotations

import sys

from harness import Arm, Comparison, Metric, main
from settings import GRPO, budget

W_REINFORCE = Arm("w_reinforce", "recipes/methods/w_reinforce.yaml")

COMPARISON = Comparison(
    name="w_reinforce_passk",
    title="W-REINFORCE vs GRPO (tiny model, arithmetic)",
    baseline=GRPO,
    methods=(W_REINFORCE,),
    budget=budget(),
    metrics=(
        Metric("held-out pass@1", "eval/pass@1"),
        Metric("held-out pass@16", "eval/pass@16"),
        Metric("held-out pass@4", "eval/pass@4"),
        Metric("entropy, last 5 steps", "learner/entropy", "last_mean:5"),
    ),
    curves=(("accuracy/mean", "train accuracy"), ("learner/entropy", "policy entropy (nats/token)")),
)

if __name__ == "__main__":
    main(COMPARISON, sys.argv[1:])
