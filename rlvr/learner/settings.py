"""Learner settings (torch-free, so recipe code can build them without importing the stack)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

LrSchedule = Literal["constant", "linear", "cosine"]
Dtype = Literal["float32", "bfloat16", "float16"]


@dataclass(frozen=True)
class LearnerSettings:
    """How one learner rank builds its DeepSpeed engine.

    Attributes:
        zero_stage: DeepSpeed ZeRO stage (0-3).
        lr: Peak learning rate.
        weight_decay: AdamW weight decay.
        betas: AdamW betas.
        eps: AdamW epsilon.
        grad_clip: Max global grad norm (0 disables clipping).
        lr_schedule: "constant", "linear" (decay to ``min_lr_ratio``) or "cosine".
        warmup_steps: Linear warm-up optimizer steps from 0 to ``lr``.
        total_steps: Optimizer steps the decay spans (ignored by "constant").
        min_lr_ratio: Final lr as a fraction of ``lr`` for the decaying schedules.
        dtype: Parameter/compute dtype; "float32" is fastest on CPUs without AMX.
        seed: Seeds torch/python/numpy RNGs at build time.
        dist_timeout_s: Deadline of every collective (process-group timeout).
        logprob_chunk_tokens: Tokens per chunk when turning logits into logprobs/entropy in float32.
        gradient_checkpointing: Recompute activations in backward to save memory.
    """

    zero_stage: int = 0
    lr: float = 1e-5
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    grad_clip: float = 1.0
    lr_schedule: LrSchedule = "constant"
    warmup_steps: int = 0
    total_steps: int = 1
    min_lr_ratio: float = 0.0
    dtype: Dtype = "float32"
    seed: int = 0
    dist_timeout_s: float = 300.0
    logprob_chunk_tokens: int = 4096
    gradient_checkpointing: bool = False

    def __post_init__(self) -> None:
        if self.zero_stage not in (0, 1, 2, 3):
            raise ValueError(f"zero_stage must be 0-3, got {self.zero_stage}")
        if self.lr_schedule not in ("constant", "linear", "cosine"):
            raise ValueError(f"lr_schedule must be constant|linear|cosine, got {self.lr_schedule!r}")
        if self.warmup_steps < 0 or self.total_steps < 1:
            raise ValueError("warmup_steps must be >= 0 and total_steps >= 1")
        if self.dist_timeout_s <= 0:
            raise ValueError("dist_timeout_s must be > 0: every collective needs a deadline")

    def to_dict(self) -> dict:
        """Plain dict (for logs and checkpoint metadata)."""
        return asdict(self)
