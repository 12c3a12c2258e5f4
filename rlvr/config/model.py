"""Model section of a recipe: the policy to train. No torch."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from rlvr.config.base import StrictModel


class ModelConfig(StrictModel):
    """The policy: an HF-format directory or hub id, or the project's own tiny model (`tiny: true`)."""

    path: str | None = Field(None, description="local HF model dir (relative to the recipe) or hub id")
    tiny: bool = Field(True, description="use the project's tiny model, built into the cache on first use")
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"

    @model_validator(mode="after")
    def _one_source(self) -> ModelConfig:
        if self.path is not None and self.tiny:
            raise ValueError("set either model.path or model.tiny: true, not both")
        if self.path is None and not self.tiny:
            raise ValueError("model.path is required unless model.tiny is true")
        return self
