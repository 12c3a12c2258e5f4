"""Recipe sections owned by the run itself: learner, train, checkpoint, eval, logging, resources."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field

from rlvr.config.base import StrictModel


class LRScheduleConfig(StrictModel):
    """Learning-rate schedule, stepped once per optimizer update."""

    type: Literal["constant", "linear", "cosine"] = "constant"
    warmup_updates: int = Field(0, ge=0, description="linear warm-up length, in optimizer updates")
    min_lr_ratio: float = Field(
        0.0, ge=0.0, le=1.0, description="final LR as a fraction of `lr` (linear/cosine)"
    )


class LearnerConfig(StrictModel):
    """DeepSpeed learner group: parallelism, optimiser and mini-batching (the dtype is `model.dtype`)."""

    num_ranks: int = Field(1, ge=1, description="data-parallel DeepSpeed ranks (Ray actors)")
    zero_stage: Literal[0, 1, 2, 3] = 2
    lr: float = Field(1e-6, gt=0)
    lr_schedule: LRScheduleConfig = LRScheduleConfig()
    weight_decay: float = Field(0.0, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float = Field(1.0, ge=0, description="max global grad norm; 0 disables clipping")
    updates_per_step: int = Field(
        1, ge=1, description="optimizer updates (mini-batches) per RL step; 1 = exactly on-policy"
    )
    micro_batch_tokens: int = Field(
        4096, ge=1, description="token budget of one forward/backward micro-batch per rank"
    )
    gradient_checkpointing: bool = False
    offload_optimizer: bool = False
    collective_timeout_s: float = Field(300.0, gt=0, description="deadline of every collective")


class TrainConfig(StrictModel):
    """The RL loop's length and batch shape."""

    steps: int = Field(100, ge=1, description="RL steps (generate → reward → update → sync)")
    prompts_per_step: int = Field(32, ge=1, description="distinct prompts sampled per RL step")
    async_mode: Literal["off", "one_step_off"] = Field(
        "off", description="one_step_off: generate step t+1 while the learner trains on step t"
    )


class CheckpointConfig(StrictModel):
    """Atomic checkpoints of learner + trainer state, with an HF export of the policy."""

    every_steps: int = Field(0, ge=0, description="0 = only at the end")
    keep_last: int = Field(2, ge=1)
    dir: str | None = Field(None, description="default: <run_dir>/checkpoints")
    export_hf: bool = True


class EvalConfig(StrictModel):
    """Periodic held-out evaluation during training (uses data.eval)."""

    every_steps: int = Field(0, ge=0, description="0 = never during training")
    samples_per_prompt: int = Field(1, ge=1)
    temperature: float = Field(0.0, ge=0, description="0 = greedy")
    top_p: float = Field(1.0, gt=0, le=1)
    max_prompts: int | None = Field(None, ge=1, description="cap on held-out prompts per evaluation")
    at_start: bool = True


class WandbConfig(StrictModel):
    """Weights & Biases; `mode: offline` works without network."""

    enabled: bool = False
    project: str = "rlvr"
    mode: Literal["online", "offline"] = "offline"


class LoggingConfig(StrictModel):
    """Where a run writes metrics and how it shows progress."""

    run_dir: str = Field("runs/{name}", description="`{name}` is replaced by the recipe name")
    jsonl: bool = True
    tensorboard: bool = True
    wandb: WandbConfig = WandbConfig()
    progress: bool = True
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class ResourcesConfig(StrictModel):
    """Placement of rollout workers and learner ranks on the Ray cluster."""

    placement: Literal["disaggregated", "colocated"] = "disaggregated"
    ray_address: str | None = Field(None, description="existing cluster ('auto' or host:port); None = local")
    num_cpus: int | None = Field(None, ge=1, description="CPUs for a local Ray cluster (default: all)")
    cpus_per_learner: float = Field(1.0, ge=0)
    cpus_per_rollout_worker: float = Field(0.0, ge=0)
    gpus_per_learner: float = Field(0.0, ge=0)
    gpus_per_rollout_worker: float | None = Field(
        None,
        ge=0,
        description="Ray GPUs per rollout actor; None = rollout.tensor_parallel_size on CUDA, 0 on CPU",
    )
    env: dict[str, str] = Field(
        default_factory=dict,
        description="environment variables for the driver and every actor, e.g. {HF_HUB_OFFLINE: '1'}",
    )
    learner_node_resources: dict[str, float] = Field(
        default_factory=dict,
        description="custom Ray resources each learner rank reserves, e.g. {learner_node: 0.01} to place the "
        "ranks on nodes started with `ray start --resources '{\"learner_node\": 1}'`",
    )
    rollout_node_resources: dict[str, float] = Field(
        default_factory=dict,
        description="custom Ray resources each rollout worker reserves (as learner_node_resources)",
    )
    nodes: int | None = Field(
        None,
        ge=1,
        description="nodes of a cluster launch (`rlvr launch`); None = the fewest that hold the actors",
    )
    gpus_per_node: int = Field(8, ge=1, description="GPUs on each node of a cluster launch (`rlvr launch`)")

    def rollout_gpus(self, tensor_parallel_size: int, device: str) -> float:
        """Ray GPUs per rollout worker: `gpus_per_rollout_worker`, else the tensor-parallel size off CPU."""
        if self.gpus_per_rollout_worker is not None:
            return self.gpus_per_rollout_worker
        return 0.0 if device == "cpu" else float(tensor_parallel_size)

    def nodes_needed(self, learner_ranks: int, rollout_workers: int, rollout_gpus: float) -> int | None:
        """The fewest `gpus_per_node`-GPU nodes holding every actor's GPUs on one node (Ray's accounting, so
        colocated actors count their fractions); None when one actor needs more GPUs than a node has."""
        return min_nodes(
            learner_ranks, self.gpus_per_learner, rollout_workers, rollout_gpus, self.gpus_per_node
        )

    def placement_issue(
        self, learner_ranks: int, rollout_workers: int, tensor_parallel_size: int, device: str
    ) -> tuple[str, str] | None:
        """(dotted key, message) when the actors cannot be placed on the nodes these keys describe."""
        rollout_gpus = self.rollout_gpus(tensor_parallel_size, device)
        per_node = self.gpus_per_node
        learners = f"learner.num_ranks={learner_ranks} x resources.gpus_per_learner={self.gpus_per_learner:g}"
        rollout_key = (
            f"resources.gpus_per_rollout_worker={rollout_gpus:g}"
            if self.gpus_per_rollout_worker is not None
            else f"rollout.tensor_parallel_size={tensor_parallel_size}"
        )
        rollouts = f"rollout.num_workers={rollout_workers} x {rollout_key}"
        needed = self.nodes_needed(learner_ranks, rollout_workers, rollout_gpus)
        if needed is None:
            return (
                "resources.gpus_per_node",
                f"{learners} and {rollouts}: one actor needs more than resources.gpus_per_node={per_node} GPUs "
                "(an actor's GPUs are on one node)",
            )
        if self.nodes is not None and needed > self.nodes:
            total = learner_ranks * self.gpus_per_learner + rollout_workers * rollout_gpus
            return (
                "resources.nodes",
                f"{learners} + {rollouts} = {total:g} GPUs do not fit resources.nodes={self.nodes} x "
                f"resources.gpus_per_node={per_node} (they need {needed} nodes)",
            )
        return None


_EPS = 1e-9


def min_nodes(n_a: int, gpus_a: float, n_b: int, gpus_b: float, gpus_per_node: int) -> int | None:
    """Fewest nodes of `gpus_per_node` GPUs that hold `n_a` actors of `gpus_a` GPUs and `n_b` of `gpus_b`, each
    actor on one node (exact for these two sizes); None when one actor alone does not fit a node."""
    n_a, n_b = (n_a if gpus_a > 0 else 0), (n_b if gpus_b > 0 else 0)
    if (n_a and gpus_a > gpus_per_node + _EPS) or (n_b and gpus_b > gpus_per_node + _EPS):
        return None
    nodes = max(1, math.ceil((n_a * gpus_a + n_b * gpus_b) / gpus_per_node - _EPS))
    while not _packs(n_a, gpus_a, n_b, gpus_b, gpus_per_node, nodes):
        nodes += 1  # terminates: one actor per node always packs
    return nodes


def _packs(n_a: int, gpus_a: float, n_b: int, gpus_b: float, gpus_per_node: int, nodes: int) -> bool:
    """Whether `nodes` nodes hold them: best[i] = most b-actors placed with exactly i a-actors placed."""
    most_a = int((gpus_per_node + _EPS) // gpus_a) if n_a else 0
    best = [0] + [-1] * n_a
    for _ in range(nodes):
        new = [-1] * (n_a + 1)
        for placed, b_placed in enumerate(best):
            if b_placed < 0:
                continue
            for x in range(min(most_a, n_a - placed) + 1):
                free = gpus_per_node - x * gpus_a
                fill = int((free + _EPS) // gpus_b) if n_b else 0
                new[placed + x] = max(new[placed + x], b_placed + fill)
        best = new
    return best[n_a] >= n_b
