"""Data section of a recipe: which datasets feed training and held-out eval, and how prompts look.

Torch-free. Loading and validation of the rows live in :mod:`rlvr.data.loaders`.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from rlvr.config.base import StrictModel

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class DatasetConfig(StrictModel):
    """One dataset split.

    Attributes:
        source: ``"synthetic"`` (the project's arithmetic task), a hub id (e.g. ``openai/gsm8k``),
            or local jsonl/json/parquet/csv file path(s).
        subset: Hub configuration name (e.g. ``main`` for GSM8K).
        split: Split name (``train``/``test``); for local files it only labels the rows.
        format: Schema adapter: ``gsm8k``, ``math``, ``aime``, ``generic`` or ``synthetic``.
        prompt_key: Problem column for ``generic``.
        answer_key: Answer column for ``generic``.
        template: ``chat`` (the tokenizer's chat template) or ``plain`` (raw text).
        system_prompt: Optional system message (chat) or preamble (plain).
        instruction: Optional text appended to every problem in the user turn, e.g. the answer format
            ("Please reason step by step, and put your final answer within \\boxed{}.").
        limit: Keep only the first N rows (after shuffling).
        shuffle: Shuffle rows with ``seed`` before ``limit``.
        seed: Shuffle seed.
    """

    source: str | list[str] = "synthetic"
    subset: str | None = None
    split: str = "train"
    format: str = "synthetic"
    prompt_key: str | None = None
    answer_key: str | None = None
    template: Literal["chat", "plain"] = "chat"
    system_prompt: str | None = None
    instruction: str | None = None
    limit: int | None = Field(None, ge=1)
    shuffle: bool = False
    seed: int = 0

    @field_validator("format")
    @classmethod
    def _snake_case(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"format must be a lowercase snake_case registry key, got {value!r}")
        return value

    @model_validator(mode="after")
    def _generic_needs_keys(self) -> DatasetConfig:
        if self.format == "generic" and not (self.prompt_key and self.answer_key):
            raise ValueError("format 'generic' needs prompt_key and answer_key")
        return self


def _default_train() -> DatasetConfig:
    return DatasetConfig(split="train", shuffle=True)


def _default_eval() -> DatasetConfig:
    return DatasetConfig(split="test")


class DataConfig(StrictModel):
    """Training and held-out datasets (default: the synthetic task's train and test splits)."""

    train: DatasetConfig = Field(default_factory=_default_train)
    eval: DatasetConfig | None = Field(default_factory=_default_eval)
