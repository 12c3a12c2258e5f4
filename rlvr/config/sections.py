"""Recipe sections owned by the run itself: learner, train, checkpoint, eval, logging, resources."""

from __future__ import annotations

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
