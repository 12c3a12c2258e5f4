"""Datasets → rows ``{"prompt", "answer", ...extra fields}``: local files or the HF hub, one adapter per schema.

Every row is validated at load time, so a missing or empty field stops the run before training with the
source and row index in the message. Extra fields (``difficulty``, ``level``, ``subject``, ``data_source``)
are kept for per-field evaluation breakdowns and per-source reward routing.
"""

from __future__ import annotations

import glob
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rlvr.config.data import SYNTHETIC_TEST_SIZE, SYNTHETIC_TRAIN_SIZE, DatasetConfig

KEEP_FIELDS = ("difficulty", "level", "subject", "type", "data_source", "id", "unique_id")


class DataError(ValueError):
    """A dataset cannot be used: unreadable source or a bad row (the message names source and row)."""


Adapter = Callable[[dict[str, Any], DatasetConfig], tuple[str, str]]
ADAPTERS: dict[str, Adapter] = {}


def register_format(name: str) -> Callable[[Adapter], Adapter]:
    """Register a row adapter: ``fn(raw_row, cfg) -> (prompt, answer)``; raise KeyError/ValueError if bad."""

    def deco(fn: Adapter) -> Adapter:
        ADAPTERS[name] = fn
        return fn

    return deco


def _field(row: dict[str, Any], key: str) -> str:
    if key not in row or row[key] is None:
        raise KeyError(f"field {key!r} is missing")
    value = str(row[key]).strip()
    if not value:
        raise ValueError(f"field {key!r} is empty")
    return value


@register_format("synthetic")
def _synthetic(row: dict[str, Any], cfg: DatasetConfig) -> tuple[str, str]:
    return _field(row, "prompt"), _field(row, "answer")


@register_format("generic")
def _generic(row: dict[str, Any], cfg: DatasetConfig) -> tuple[str, str]:
    return _field(row, cfg.prompt_key or "prompt"), _field(row, cfg.answer_key or "answer")


@register_format("gsm8k")
def _gsm8k(row: dict[str, Any], cfg: DatasetConfig) -> tuple[str, str]:
    answer = _field(row, "answer")
    if "####" not in answer:
        raise ValueError("field 'answer' has no '#### <final answer>' line")
    final = answer.rsplit("####", 1)[1].strip().replace(",", "")
    if not final:
        raise ValueError("field 'answer' has an empty '####' answer")
    return _field(row, "question"), final


@register_format("math")
def _math(row: dict[str, Any], cfg: DatasetConfig) -> tuple[str, str]:
    if row.get("answer") not in (None, ""):
        return _field(row, "problem"), _field(row, "answer")
    from rewards.math_extract import last_boxed

    boxed = last_boxed(_field(row, "solution"))
    if not boxed:
        raise ValueError("no 'answer' field and no \\boxed{} in 'solution'")
    return _field(row, "problem"), boxed


@register_format("aime")
def _aime(row: dict[str, Any], cfg: DatasetConfig) -> tuple[str, str]:
    prompt = _field(row, "problem") if "problem" in row else _field(row, "question")
    return prompt, _field(row, "answer")


def _read_source(cfg: DatasetConfig, base_dir: Path) -> tuple[list[dict[str, Any]], str]:
    if cfg.source == "synthetic":
        from rlvr.data.synthetic import make_splits

        if cfg.split not in ("train", "test"):
            raise DataError(f"synthetic data has splits 'train' and 'test', not {cfg.split!r}")
        n_train = cfg.size if cfg.split == "train" and cfg.size else SYNTHETIC_TRAIN_SIZE
        n_test = cfg.size if cfg.split == "test" and cfg.size else SYNTHETIC_TEST_SIZE
        train, test = make_splits(n_train, n_test, seed=cfg.seed)
        problems = train if cfg.split == "train" else test
        return [p.row() for p in problems], f"synthetic:{cfg.split}"
    local = (base_dir / cfg.source).expanduser()
    files = sorted(glob.glob(str(local))) if any(c in cfg.source for c in "*?[") else []
    if local.exists() or files:
        return _read_files(files or [str(local)], cfg.source), cfg.source
    if cfg.source.startswith((".", "/", "~")) or cfg.source.endswith((".jsonl", ".json", ".parquet")):
        raise DataError(f"dataset file not found: {cfg.source} (looked at {local})")
    return _read_hub(cfg), cfg.source


def _read_files(paths: list[str], source: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in paths:
        suffix = Path(path).suffix
        if suffix in (".jsonl", ".json"):
            import json

            try:
                text = Path(path).read_text()
                if suffix == ".json":
                    data = json.loads(text)
                    rows.extend(data if isinstance(data, list) else data.get("data", []))
                else:
                    for n, line in enumerate(text.splitlines()):
                        if line.strip():
                            try:
                                rows.append(json.loads(line))
                            except json.JSONDecodeError as exc:
                                raise DataError(f"{path} line {n + 1}: invalid JSON ({exc.msg})") from None
            except OSError as exc:
                raise DataError(f"cannot read {path}: {exc.strerror}") from None
        elif suffix == ".parquet":
            import datasets

            rows.extend(datasets.Dataset.from_parquet(path).to_list())
        else:
            raise DataError(f"{path}: unsupported file type {suffix!r} (use .jsonl, .json or .parquet)")
    return rows


def _read_hub(cfg: DatasetConfig) -> list[dict[str, Any]]:
    import datasets

    try:
        ds = datasets.load_dataset(cfg.source, cfg.subset, split=cfg.split)
    except Exception as exc:  # any hub/network/format failure becomes one clear message
        raise DataError(f"cannot load hub dataset {cfg.source!r} split {cfg.split!r}: {exc}") from None
    return ds.to_list()


def load_dataset_rows(cfg: DatasetConfig | None, base_dir: str | Path = ".") -> list[dict[str, Any]]:
    """Load, adapt and validate every row of a dataset. Returns [] for `cfg=None`."""
    if cfg is None:
        return []
    raw, name = _read_source(cfg, Path(base_dir))
    if cfg.shuffle:
        random.Random(cfg.seed).shuffle(raw)
    if cfg.limit:
        raw = raw[: cfg.limit]
    if not raw:
        raise DataError(f"{name}: the dataset is empty")
    adapter = ADAPTERS[cfg.format]
    rows = []
    for i, row in enumerate(raw):
        if not isinstance(row, dict):
            raise DataError(f"{name} row {i}: expected a mapping, got {type(row).__name__}")
        try:
            prompt, answer = adapter(row, cfg)
        except (KeyError, ValueError) as exc:
            msg = exc.args[0] if exc.args else str(exc)
            raise DataError(f"{name} row {i} ({cfg.format} format): {msg}") from None
        out = {"prompt": prompt, "answer": answer, "data_source": row.get("data_source") or cfg.format}
        out.update({k: row[k] for k in KEEP_FIELDS if k in row and k != "data_source"})
        out["_format"] = {"template": cfg.template, "system": cfg.system_prompt, "suffix": cfg.prompt_suffix}
        rows.append(out)
    return rows


def prompt_text(tokenizer: Any, row: dict[str, Any]) -> str:
    """The prompt as the model sees it: the chat template (with a generation prompt) or plain text."""
    fmt = row.get("_format") or {"template": "chat", "system": None, "suffix": ""}
    content = row["prompt"] + (fmt.get("suffix") or "")
    if fmt.get("template", "chat") == "plain" or not getattr(tokenizer, "chat_template", None):
        return content
    messages = [{"role": "system", "content": fmt["system"]}] if fmt.get("system") else []
    messages.append({"role": "user", "content": content})
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def prompt_token_ids(tokenizer: Any, row: dict[str, Any]) -> list[int]:
    """Token ids of `prompt_text` (the template carries any special tokens itself)."""
    return list(tokenizer(prompt_text(tokenizer, row), add_special_tokens=False)["input_ids"])
