"""Model section of a recipe (placeholder: owned and completed by the data/tiny-model work)."""

from __future__ import annotations

from rlvr.config.base import StrictModel


class ModelConfig(StrictModel):
    """Which policy to train."""

    path: str = "~/.cache/rlvr/tiny"
    dtype: str = "float32"
