"""Algorithm section of a recipe (placeholder: owned and completed by the algorithm-library work)."""

from __future__ import annotations

from rlvr.config.base import StrictModel


class AlgorithmConfig(StrictModel):
    """Advantage estimator, policy-loss modifiers and aggregation."""

    estimator: str = "grpo"
    loss: str = "ppo_clip"

    def composition_issues(self, *, updates_per_step: int) -> list[tuple[str, str, str]]:
        """Return (level, key, message) tuples; level is "error" or "warning"."""
        return []
