"""Rollout section of a recipe: sampling, the vLLM engine and verified learner -> rollout weight sync.

Imports no torch/vLLM/Ray so recipes validate on any machine.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from rlvr.config.base import StrictModel

FLOAT32_TOLERANCE = 1e-4
HALF_PRECISION_TOLERANCE = 5e-2


class SyncConfig(StrictModel):
    """How weights pushed from the learner are checked inside each rollout worker.

    After every push each worker scores ``probe_sequences`` fixed sequences; the max |Δlogprob| against the
    learner's own logprobs on the same tokens must stay within ``tolerance`` or the run stops. The default
    tolerance follows ``model.dtype`` (half precision cannot agree to fp32 precision).
    """

    transport: Literal["auto", "object_store", "collective"] = Field(
        "auto",
        description="how weights travel: object_store (Ray's object store, in-process CPU engines), collective "
        "(a gloo/NCCL broadcast from learner rank 0 into every engine worker), auto = object_store for "
        "in-process CPU engines, collective otherwise (CUDA, multiprocess engines); docs/sync.md",
    )
    verify: bool = True
    tolerance: float | None = Field(
        None,
        gt=0,
        description="max |Δlogprob| of the probe; None = by model.dtype: 1e-4 for float32 (CPU agrees to "
        "~1e-6, measured), 5e-2 for bfloat16/float16 (half-precision kernels differ by ~1e-2)",
    )
    probe_sequences: int = Field(2, ge=1)
    timeout_s: float = Field(
        300.0, gt=0, description="deadline of each sync phase: publish, push to every worker, and the probe"
    )

    def tolerance_for(self, dtype: str) -> float:
        """The probe tolerance for a resolved model dtype: the explicit value, else the dtype's default."""
        if self.tolerance is not None:
            return self.tolerance
        return HALF_PRECISION_TOLERANCE if dtype in ("bfloat16", "float16") else FLOAT32_TOLERANCE


class RolloutConfig(StrictModel):
    """Generation settings. Batch fields are named by unit (prompts, samples, tokens)."""

    samples_per_prompt: int = Field(8, ge=1)
    max_prompt_tokens: int = Field(128, ge=1)
    max_response_tokens: int = Field(128, ge=1)
    temperature: float = Field(1.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    # 0 (or -1) disables top-k, as in vLLM.
    top_k: int = Field(0, ge=-1)
    num_workers: int = Field(1, ge=1)

    # Engine settings. On CPU the KV cache must be sized explicitly (vLLM's memory probe misreads this VM).
    # None: sized from the model so `max_num_seqs` sequences of `max_model_len` tokens fit, capped at a quarter
    # of this machine's memory (rlvr.rollout.kv_cache.kv_cache_bytes).
    kv_cache_memory_mb: int | None = Field(None, ge=1)
    enforce_eager: bool = True
    gpu_memory_utilization: float = Field(0.5, gt=0, le=1)
    tensor_parallel_size: int = Field(1, ge=1)
    max_num_seqs: int = Field(256, ge=1)
    # Per-call deadline for generate/score/update on a worker; a dead or hung worker fails loudly.
    call_timeout_s: float = Field(600.0, gt=0)

    sync: SyncConfig = Field(default_factory=SyncConfig)

    @property
    def max_model_len(self) -> int:
        """Longest sequence the engine must hold: prompt plus response tokens."""
        return self.max_prompt_tokens + self.max_response_tokens
