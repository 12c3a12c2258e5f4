"""Render a ready-to-submit cluster launch script from a recipe's `resources` (`rlvr launch slurm|ray`).

The script is sized by the recipe: `learner.num_ranks` x `resources.gpus_per_learner` plus
`rollout.num_workers` x the rollout GPUs (`resources.gpus_per_rollout_worker`, else
`rollout.tensor_parallel_size` off CPU) on `resources.nodes` nodes of `resources.gpus_per_node` GPUs
(default: the fewest nodes that hold every actor). It starts a Ray head on the first node and a Ray worker on
each other node, then runs `rlvr train RECIPE [overrides] resources.ray_address=auto [--resume ...]` on the head
(a job re-submitted with `--resume auto` continues from the run's latest complete checkpoint).

Imports only the config layer: rendering works on a login node without torch, Ray or vLLM installed.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from rlvr.config import load_recipe

TARGETS = ("slurm", "ray")


@dataclass(frozen=True)
class LaunchPlan:
    """What a launch script allocates and starts, derived from one recipe plus overrides."""

    recipe_path: str
    overrides: tuple[str, ...]
    name: str
    nodes: int
    gpus_per_node: int  # 0 when the recipe reserves no GPU (a CPU cluster)
    learner_ranks: int
    gpus_per_learner: float
    rollout_workers: int
    gpus_per_rollout_worker: float
    resume: str | None = None  # `rlvr train --resume` (auto or a checkpoint path); None starts a new run

    @property
    def total_gpus(self) -> float:
        return (
            self.learner_ranks * self.gpus_per_learner + self.rollout_workers * self.gpus_per_rollout_worker
        )

    def train_command(self) -> str:
        """`rlvr train` on the head node, joined to the running cluster (`resources.ray_address=auto` last)."""
        words = ["rlvr", "train", self.recipe_path, *self.overrides, "resources.ray_address=auto"]
        if self.resume is not None:
            words += ["--resume", self.resume]
        return " ".join(shlex.quote(w) for w in words)

    def summary(self) -> str:
        gpus = (
            f"{self.nodes} node(s) x {self.gpus_per_node} GPUs"
            if self.gpus_per_node
            else f"{self.nodes} node(s)"
        )
        return (
            f"learners {self.learner_ranks} x {self.gpus_per_learner:g} GPU + rollout workers "
            f"{self.rollout_workers} x {self.gpus_per_rollout_worker:g} GPU = {self.total_gpus:g} GPUs on {gpus}"
        )


def plan_launch(
    recipe_path: str, overrides: list[str] | tuple[str, ...] = (), resume: str | None = None
) -> LaunchPlan:
    """Load and validate the recipe (the launch's own overrides included), then size the allocation.

    Raises:
        RecipeError: the recipe is invalid, or its actors do not fit `resources.nodes` x `resources.gpus_per_node`.
    """
    kept = tuple(o for o in overrides if not o.strip().startswith("resources.ray_address="))
    recipe, _ = load_recipe(recipe_path, list(kept))
    res = recipe.resources
    ranks, workers = recipe.learner.num_ranks, recipe.rollout.num_workers
    rollout_gpus = res.rollout_gpus(recipe.rollout.tensor_parallel_size, recipe.device)
    needed = res.nodes_needed(ranks, workers, rollout_gpus)
    assert needed is not None, "load_recipe refuses actors larger than a node"
    uses_gpus = ranks * res.gpus_per_learner + workers * rollout_gpus > 0
    return LaunchPlan(
        recipe_path=recipe_path,
        overrides=kept,
        name=recipe.name,
        nodes=res.nodes or needed,
        gpus_per_node=res.gpus_per_node if uses_gpus else 0,
        learner_ranks=ranks,
        gpus_per_learner=res.gpus_per_learner,
        rollout_workers=workers,
        gpus_per_rollout_worker=rollout_gpus,
        resume=resume,
    )


def _command_line(plan: LaunchPlan, target: str) -> str:
    words = ["rlvr", "launch", target, plan.recipe_path, *plan.overrides]
    if plan.resume is not None:
        words += ["--resume", plan.resume]
    return " ".join(shlex.quote(w) for w in words)


def render_slurm(plan: LaunchPlan) -> str:
    """An sbatch script: the allocation in #SBATCH lines, Ray head + workers via srun, `rlvr train` on the head."""
    gpu_sbatch = f"#SBATCH --gpus-per-node={plan.gpus_per_node}\n" if plan.gpus_per_node else ""
    num_gpus = f" --num-gpus={plan.gpus_per_node}" if plan.gpus_per_node else ""
    return f"""#!/usr/bin/env bash
# Rendered by: {_command_line(plan, "slurm")}
# {plan.summary()}
# Submit: sbatch THIS_FILE (sbatch flags such as --partition, --account or --time go on its command line)
#SBATCH --job-name={plan.name}
#SBATCH --nodes={plan.nodes}
#SBATCH --ntasks-per-node=1
{gpu_sbatch}#SBATCH --exclusive
#SBATCH --output=rlvr-%j.out
set -euo pipefail
want_nodes={plan.nodes}
port=${{RAY_PORT:-6379}}
wait_s=${{RAY_WAIT_S:-300}}
mapfile -t nodes < <(scontrol show hostnames "$SLURM_JOB_NODELIST")
if [ "${{#nodes[@]}}" -lt "$want_nodes" ]; then
  echo "the allocation has ${{#nodes[@]}} node(s); the recipe needs $want_nodes (resources.nodes)" >&2
  exit 2
fi
head=${{nodes[0]}}
head_ip=$(srun --nodes=1 --ntasks=1 -w "$head" hostname --ip-address | awk '{{print $1}}')
# Each `ray start --block` keeps its srun step (and so its node's Ray) alive until the job ends.
srun --nodes=1 --ntasks=1 -w "$head" ray start --head --node-ip-address="$head_ip" --port="$port"{num_gpus} \\
  --disable-usage-stats --block &
deadline=$((SECONDS + wait_s))
until srun --overlap --nodes=1 --ntasks=1 -w "$head" ray status --address="$head_ip:$port" >/dev/null 2>&1; do
  if [ "$SECONDS" -ge "$deadline" ]; then echo "the Ray head did not start within $wait_s s" >&2; exit 1; fi
  sleep 5
done
for node in "${{nodes[@]:1}}"; do
  srun --nodes=1 --ntasks=1 -w "$node" ray start --address="$head_ip:$port"{num_gpus} \\
    --disable-usage-stats --block &
done
# Wait for every node to join; `rlvr train` would otherwise wait on pending actors up to its start deadline.
joined=0
while [ "$joined" -lt "${{#nodes[@]}}" ] && [ "$SECONDS" -lt "$deadline" ]; do
  sleep 5
  joined=$(srun --overlap --nodes=1 --ntasks=1 -w "$head" ray status --address="$head_ip:$port" 2>/dev/null \\
    | grep -c '^ *1 node_' || true)
done
echo "[launch] $joined of ${{#nodes[@]}} node(s) in the Ray cluster; starting rlvr train on $head"
srun --overlap --nodes=1 --ntasks=1 -w "$head" {plan.train_command()}
"""


def render_ray(plan: LaunchPlan) -> str:
    """A script for a Ray cluster started by hand: `head`, `worker HEAD_IP` on each other node, then `train`."""
    num_gpus = f" --num-gpus={plan.gpus_per_node}" if plan.gpus_per_node else ""
    others = plan.nodes - 1
    return f"""#!/usr/bin/env bash
# Rendered by: {_command_line(plan, "ray")}
# {plan.summary()}
#   1. on the head node:   bash THIS_FILE head
#   2. on the {others} other node(s): bash THIS_FILE worker HEAD_IP
#   3. on the head node:   bash THIS_FILE train
set -euo pipefail
role=${{1:?usage: THIS_FILE head|worker HEAD_IP|train}}
port=${{RAY_PORT:-6379}}
case "$role" in
  head)   ray start --head --port="$port"{num_gpus} --disable-usage-stats ;;
  worker) ray start --address="${{2:?worker needs HEAD_IP}}:$port"{num_gpus} --disable-usage-stats ;;
  train)  exec {plan.train_command()} ;;
  *)      echo "unknown role: $role (head|worker|train)" >&2; exit 2 ;;
esac
"""


def render(
    target: str, recipe_path: str, overrides: list[str] | tuple[str, ...] = (), resume: str | None = None
) -> str:
    """The launch script for `target` ("slurm" or "ray"); `resume` is passed to `rlvr train --resume`."""
    plan = plan_launch(recipe_path, overrides, resume)
    return render_slurm(plan) if target == "slurm" else render_ray(plan)
