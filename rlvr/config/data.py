"""Data section of a recipe: training and held-out datasets, their schema and prompt formatting. No torch."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from rlvr.config.base import StrictModel

# The project's synthetic task: sizes of its fixed splits (the tiny model's SFT uses the same generator).
SYNTHETIC_TRAIN_SIZE = 4000
SYNTHETIC_TEST_SIZE = 200


class DatasetConfig(StrictModel):
    """One dataset: where it comes from, which schema its rows follow, and how prompts are formatted.

    `source` is "synthetic" (the project's arithmetic task), a local file (.jsonl/.json/.parquet, relative to the
    recipe's directory, a glob allowed) or a Hugging Face hub id (loaded with `datasets.load_dataset`).
    """

    source: str = "synthetic"
    split: str = "train"
    format: Literal["synthetic", "gsm8k", "math", "aime", "generic"] = "synthetic"
    prompt_key: str | None = Field(None, description="generic format: the row field holding the prompt")
    answer_key: str | None = Field(None, description="generic format: the row field holding the gold answer")
    subset: str | None = Field(None, description="hub dataset configuration name")
    template: Literal["chat", "plain"] = "chat"
    system_prompt: str | None = None
    prompt_suffix: str = Field("", description="appended to every prompt, e.g. an answer-format instruction")
    limit: int | None = Field(None, ge=1, description="keep the first N rows (after shuffling)")
    shuffle: bool = False
    seed: int = 0
    size: int | None = Field(None, ge=1, description="synthetic only: rows in the split (default: fixed sizes)")

    @model_validator(mode="after")
    def _keys(self) -> DatasetConfig:
        if self.format == "generic" and not (self.prompt_key and self.answer_key):
            raise ValueError("format 'generic' needs prompt_key and answer_key")
        if self.source == "synthetic" and self.format != "synthetic":
            raise ValueError("source 'synthetic' has format 'synthetic'")
        return self


class DataConfig(StrictModel):
    """Training prompts and (optionally) a held-out split for evaluation."""

    train: DatasetConfig = Field(default_factory=DatasetConfig)
    eval: DatasetConfig | None = Field(default_factory=lambda: DatasetConfig(split="test"))
