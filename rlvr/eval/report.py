"""Write an evaluation result as ``eval.json`` (machine-readable) and ``eval.md`` (for people).

Both files are replaced atomically, so a dashboard or a later ``rlvr eval`` never reads half a
report, and an evaluation re-run over the same checkpoint overwrites the previous one cleanly.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rlvr.checkpoint.atomic import atomic_write_text
from rlvr.eval.metrics import render_markdown

EVAL_JSON = "eval.json"
EVAL_MD = "eval.md"


def write_eval_report(
    out_dir: str | os.PathLike,
    result: Mapping[str, Any],
    meta: Mapping[str, Any] | None = None,
    title: str = "Evaluation",
) -> tuple[Path, Path]:
    """Write ``eval.json`` and ``eval.md`` into ``out_dir``.

    Args:
        out_dir: Directory (created if missing), e.g. the evaluated checkpoint's directory.
        result: Output of :func:`rlvr.eval.metrics.compute_eval_metrics`.
        meta: Provenance stored under ``"meta"`` in the JSON (checkpoint path, dataset, step,
            sampling settings) and listed at the end of the markdown.
        title: Markdown heading.

    Returns:
        Paths of ``eval.json`` and ``eval.md``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    payload = {**result, "meta": dict(meta or {})}
    json_path = atomic_write_text(
        out / EVAL_JSON, json.dumps(payload, indent=1, sort_keys=True, allow_nan=False) + "\n"
    )
    markdown = render_markdown(result, title=title)
    if meta:
        markdown += "\n## Run\n\n" + "".join(f"- {key}: `{value}`\n" for key, value in meta.items())
    md_path = atomic_write_text(out / EVAL_MD, markdown)
    return json_path, md_path


def read_eval_report(out_dir: str | os.PathLike) -> dict[str, Any]:
    """Load an ``eval.json`` written by :func:`write_eval_report`."""
    return json.loads((Path(out_dir) / EVAL_JSON).read_text(encoding="utf-8"))
