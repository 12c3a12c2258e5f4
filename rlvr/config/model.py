"""Model section of a recipe: which policy to train and in what dtype. Torch-free."""

from __future__ import annotations

from typing import Literal

from rlvr.config.base import StrictModel

TINY = "tiny"


class ModelConfig(StrictModel):
    """Which policy to train.

    Attributes:
        path: Local HF model folder or hub id. The special value ``"tiny"`` means the project's own
            tiny reasoning model, built on first use (``rlvr.tiny.build.resolve_model_path``).
        dtype: Parameter dtype; float32 is the default because bf16 is slower on CPUs without AMX.
    """

    path: str = TINY
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"

    @property
    def is_tiny(self) -> bool:
        """True when ``path`` names the project's tiny model."""
        return self.path == TINY
