#!/usr/bin/env bash
# Every comparison in turn, one run at a time (they share the GRPO baseline's runs); then docs/results.md's
# numbers are in experiments/results/*.json and its plots in docs/results/*.png.
#   bash experiments/run_all.sh [--seeds 3] [--aggregate-only]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
for script in cov_entropy lens_groups w_reinforce_passk drpo_length erc_offpolicy; do
  "$PY" "experiments/$script.py" "$@"
done
"$PY" experiments/trl_curve.py "$@"  # GRPO in rlvr vs TRL's GRPOTrainer; training needs `pip install -e '.[bench]'`
