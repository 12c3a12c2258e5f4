"""Rollout section of a recipe (placeholder: owned and completed by the rollout work)."""

from __future__ import annotations

from pydantic import Field

from rlvr.config.base import StrictModel


class RolloutConfig(StrictModel):
    """Generation settings. Batch fields are named by unit."""

    samples_per_prompt: int = Field(8, ge=1)
    max_prompt_tokens: int = Field(128, ge=1)
    max_response_tokens: int = Field(128, ge=1)
    temperature: float = Field(1.0, ge=0)
    num_workers: int = Field(1, ge=1)
