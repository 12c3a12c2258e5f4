"""Rewards section of a recipe (placeholder: owned and completed by the rewards work)."""

from __future__ import annotations

from rlvr.config.base import StrictModel


class RewardsConfig(StrictModel):
    """Which reward functions score completions, and the verification sandbox."""

    name: str = "math"
