"""A recipe's dataset as rows and prompt token ids: file sources relative to the recipe, the chat-formatted
prompt tokenized as the rollout engine will see it. Shared by the start-up checks and `rlvr eval`."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def local_dataset(cfg: Any, base_dir: Path) -> Any:
    """A copy of a DatasetConfig whose relative file sources that exist under `base_dir` are made absolute."""
    if cfg is None or cfg.source == "synthetic":
        return cfg
    sources = [cfg.source] if isinstance(cfg.source, str) else list(cfg.source)
    fixed = [str(base_dir / s) if (base_dir / s).exists() else s for s in sources]
    return cfg.model_copy(update={"source": fixed[0] if isinstance(cfg.source, str) else fixed})


def prompt_token_ids(tokenizer: Any, row: dict[str, Any]) -> list[int]:
    """Token ids of a loaded row's formatted prompt (the chat template carries its own special tokens)."""
    return list(tokenizer(row["prompt"], add_special_tokens=False)["input_ids"])
