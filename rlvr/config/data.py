"""Data section of a recipe (placeholder: owned and completed by the data/tiny-model work)."""

from __future__ import annotations

from rlvr.config.base import StrictModel


class DataConfig(StrictModel):
    """Training and held-out datasets."""

    train: str = "synthetic"
