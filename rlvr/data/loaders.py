"""Dataset loaders: hub ids or local files through HF ``datasets``, schema adapters, prompt formatting.

Every row becomes ``{"prompt", "messages", "question", "answer", "data_source", "index", ...}``:
``question`` is the raw problem, ``messages`` the chat turns, ``prompt`` the text handed to the
rollout engine (chat template applied when a tokenizer is given, or plain text), ``answer`` the
reference answer as a string. All rows are validated at load, so a bad row stops the run before
training with its file and row index (``DataError``).

Schema adapters are a registry (``register_format``): adding a dataset is one function.
"""

from __future__ import annotations

import csv
import io
import json
import random
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from rewards.math_extract import last_boxed
from rlvr.config.data import DatasetConfig
from rlvr.registry import Registry

_LOCAL_BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}


class DataError(ValueError):
    """A dataset row or source that cannot be used (message names the file and row)."""


# adapter(row, cfg) -> (question, answer); raises KeyError/ValueError with the offending field.
Adapter = Callable[[Mapping[str, Any], DatasetConfig], tuple[Any, Any]]
FORMATS = Registry("dataset format", error=DataError)


# Source columns copied into the rows when present (evaluation reports break accuracy down by them). Row
# fields reach reward functions as keyword arguments, so none may share a name with a reward's settings
# (a column called `style` would override the `math` reward's answer style).
KEPT_COLUMNS = ("difficulty", "level", "subject", "prompt_style")


def register_format(name: str) -> Callable[[Adapter], Adapter]:
    """Register a schema adapter under ``name`` (the ``format`` field of a dataset config)."""
    return FORMATS.register(name)


def _field(row: Mapping[str, Any], key: str) -> Any:
    if key not in row:
        raise KeyError(key)
    value = row[key]
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError(f"field {key!r} is missing or empty")
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"field {key!r} must be text or a number, got {type(value).__name__}")
    return value


@register_format("gsm8k")
def _gsm8k(row: Mapping[str, Any], cfg: DatasetConfig) -> tuple[Any, Any]:
    """GSM8K: ``question``; ``answer`` is a worked solution ending in ``#### <number>``."""
    solution = str(_field(row, "answer"))
    if "####" not in solution:
        raise ValueError("field 'answer' has no '#### <answer>' line")
    final = solution.rsplit("####", 1)[1].strip().replace(",", "")
    if not final:
        raise ValueError("field 'answer' has an empty '####' answer")
    return _field(row, "question"), final


@register_format("math")
def _math(row: Mapping[str, Any], cfg: DatasetConfig) -> tuple[Any, Any]:
    """MATH / MATH500: ``problem``; ``answer`` if present, else the last ``\\boxed{}`` of ``solution``."""
    problem = _field(row, "problem")
    if row.get("answer") not in (None, ""):
        return problem, _field(row, "answer")
    boxed = last_boxed(str(_field(row, "solution")))
    if boxed is None:
        raise ValueError("no 'answer' field and no \\boxed{} in 'solution'")
    return problem, boxed


@register_format("aime")
def _aime(row: Mapping[str, Any], cfg: DatasetConfig) -> tuple[Any, Any]:
    """AIME-style: ``problem`` and an integer ``answer``."""
    return _field(row, "problem"), _field(row, "answer")


@register_format("synthetic")
def _synthetic(row: Mapping[str, Any], cfg: DatasetConfig) -> tuple[Any, Any]:
    """The project's synthetic task rows (``prompt``, ``answer``)."""
    return _field(row, "prompt"), _field(row, "answer")


@register_format("generic")
def _generic(row: Mapping[str, Any], cfg: DatasetConfig) -> tuple[Any, Any]:
    """Any schema: columns named by ``prompt_key`` and ``answer_key``."""
    if not (cfg.prompt_key and cfg.answer_key):
        raise ValueError("format 'generic' needs prompt_key and answer_key")
    return _field(row, cfg.prompt_key), _field(row, cfg.answer_key)


def is_local_source(source: str | list[str]) -> bool:
    """True when every source is a local file name (by its suffix), else a hub id or ``synthetic``."""
    sources = [source] if isinstance(source, str) else list(source)
    return all(Path(s).suffix in _LOCAL_BUILDERS for s in sources)


def _raw_rows(cfg: DatasetConfig) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows of the source and, per row, where it came from (file or hub id) for error messages."""
    if cfg.source == "synthetic":
        from rlvr.data.synthetic import canonical_split

        rows = [p.row() for p in canonical_split(cfg.split)]
        return rows, [f"synthetic:{cfg.split}"] * len(rows)
    sources = [cfg.source] if isinstance(cfg.source, str) else list(cfg.source)
    local = [Path(s).expanduser() for s in sources]
    if is_local_source(cfg.source):
        rows, origins = [], []
        for path in local:
            file_rows = _read_local(path)
            rows.extend(file_rows)
            origins.extend([str(path)] * len(file_rows))
        return rows, origins
    if len(sources) != 1:
        raise DataError(f"mixed or multiple non-file sources are not supported: {sources}")
    import datasets

    try:
        ds = datasets.load_dataset(sources[0], name=cfg.subset, split=cfg.split)
    except Exception as exc:  # not found, offline, no such split/subset: one line naming the source
        raise DataError(f"{sources[0]}: cannot load (split {cfg.split!r}): {_first_line(exc)}") from None
    return ds.to_list(), [f"{sources[0]}:{cfg.split}"] * len(ds)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:300]}" if lines else type(exc).__name__


def _read_local(path: Path) -> list[dict[str, Any]]:
    """Rows of one local file; an empty, non-UTF-8 or malformed file is a DataError naming it (and the line)."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    if not data.strip():
        raise DataError(f"{path}: file is empty")
    if path.suffix != ".parquet":
        try:
            text = data.decode("utf-8-sig")  # a leading byte-order mark is not part of the data
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}: not UTF-8 text (byte {exc.start}: {data[exc.start]:#04x})") from None
    try:
        if path.suffix == ".parquet":
            import pyarrow.parquet

            rows = pyarrow.parquet.read_table(path).to_pylist()
        elif path.suffix == ".csv":
            rows = list(csv.DictReader(io.StringIO(text)))
        elif path.suffix == ".json":
            return _json_rows(path, text)
        else:
            return _jsonl_rows(path, text)
    except (ValueError, OSError, csv.Error) as exc:  # pyarrow raises ArrowInvalid (a ValueError) etc.
        raise DataError(f"{path}: cannot be read as {path.suffix[1:]} ({_first_line(exc)})") from None
    if not rows:
        raise DataError(f"{path}: no rows")
    return rows


def _json_rows(path: Path, text: str) -> list[dict[str, Any]]:
    """A .json file: a list of objects, an object of equal-length columns, or JSON Lines."""
    try:
        data = json.loads(text)
    except ValueError:
        return _jsonl_rows(path, text)
    if isinstance(data, dict) and data and all(isinstance(v, list) for v in data.values()):
        lengths = {len(v) for v in data.values()}
        if len(lengths) != 1:
            raise DataError(f"{path}: columns have different lengths {sorted(lengths)}")
        data = [dict(zip(data, values)) for values in zip(*data.values())]
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a list of objects, got {type(data).__name__}")
    for i, row in enumerate(data):
        if not isinstance(row, dict):
            raise DataError(f"{path}: row {i}: expected an object, got {type(row).__name__}")
    return data


def _jsonl_rows(path: Path, text: str) -> list[dict[str, Any]]:
    """JSON Lines parsed line by line, so a bad line is reported with its number."""
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise DataError(f"{path}: line {number}: not valid JSON ({exc})") from None
        if not isinstance(row, dict):
            raise DataError(f"{path}: line {number}: expected a JSON object, got {type(row).__name__}")
        rows.append(row)
    return rows


def format_prompt(question: str, cfg: DatasetConfig, tokenizer=None) -> tuple[str, list[dict[str, str]]]:
    """Render a question as (prompt text, chat messages) following ``cfg.template``.

    Args:
        question: The raw problem text.
        cfg: Template, system prompt and instruction (appended to the question in the user turn).
        tokenizer: Needed for ``chat`` to render the text; without it ``prompt`` is the bare
            question and the engine must apply the chat template to ``messages`` itself.
    """
    if cfg.instruction:
        question = f"{question}\n\n{cfg.instruction}"
    messages = ([{"role": "system", "content": cfg.system_prompt}] if cfg.system_prompt else []) + [
        {"role": "user", "content": question}
    ]
    if cfg.template == "plain":
        return (f"{cfg.system_prompt}\n\n{question}" if cfg.system_prompt else question), messages
    if tokenizer is None:
        return question, messages
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True), messages


def load_dataset_rows(cfg: DatasetConfig, tokenizer=None) -> list[dict[str, Any]]:
    """Load, adapt, validate and format every row of one dataset split.

    Args:
        cfg: The dataset config.
        tokenizer: Optional tokenizer for the ``chat`` template.

    Returns:
        Rows in the common schema (see module docstring); the source's ``data_source`` and
        ``KEPT_COLUMNS`` (used for evaluation breakdowns) are kept when present.

    Raises:
        DataError: Unknown format, missing file, or a row with a missing/empty field (all rows are
            checked, the first bad one is reported with its source and index).
    """
    adapter = FORMATS.get(cfg.format)
    raw, origins = _raw_rows(cfg)
    out: list[dict[str, Any]] = []
    per_origin_index: dict[str, int] = {}
    for row, origin in zip(raw, origins):
        idx = per_origin_index.get(origin, 0)
        per_origin_index[origin] = idx + 1
        try:
            question, answer = adapter(row, cfg)
            question, answer = str(question), str(answer)  # str(10**5000) raises ValueError
        except KeyError as exc:
            raise DataError(
                f"{origin}: row {idx}: missing field {exc.args[0]!r} (format {cfg.format!r})"
            ) from None
        except ValueError as exc:
            raise DataError(f"{origin}: row {idx}: {exc} (format {cfg.format!r})") from None
        prompt, messages = format_prompt(str(question), cfg, tokenizer)
        item = {
            "prompt": prompt,
            "messages": messages,
            "question": str(question),
            "answer": str(answer).strip(),
            "data_source": row.get("data_source") or cfg.format,
            "index": idx,
        }
        for key in KEPT_COLUMNS:
            if key in row:
                item[key] = row[key]
        out.append(item)
    if cfg.shuffle:
        random.Random(cfg.seed).shuffle(out)
    return out[: cfg.limit] if cfg.limit else out
