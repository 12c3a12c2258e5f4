"""Held-out evaluation of the tiny model with an in-process vLLM engine.

Reports greedy accuracy (overall, per difficulty and per prompt style, with the fraction of greedy
answers in the verifiable ``\\boxed{}`` form) and, at temperature 1 with 8 samples per prompt, the fraction of prompts solved 0/8, 1-7/8 and 8/8: the spread RL learns from.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rlvr.data.synthetic import extract_boxed, is_correct
from rlvr.tiny.sft import render_prompt

MAX_RESPONSE_TOKENS = 96


def make_llm(model_dir: str | Path, *, seed: int = 0):
    """An in-process vLLM engine on the tiny model (CPU runtime defaults applied first)."""
    from rlvr.devices import apply_runtime_env

    apply_runtime_env("auto")
    from vllm import LLM

    return LLM(
        model=str(model_dir),
        dtype="float32",
        enforce_eager=True,
        max_model_len=256,
        seed=seed,
        distributed_executor_backend="uni",
        kv_cache_memory_bytes=256 * 2**20,
    )


def evaluate_tiny(
    model_dir: str | Path,
    rows: Sequence[dict[str, Any]],
    *,
    samples: int = 8,
    sample_rows: int | None = None,
    seed: int = 0,
    llm=None,
) -> dict[str, Any]:
    """Greedy accuracy and temperature-1 solve buckets on held-out rows.

    Args:
        model_dir: HF model folder.
        rows: Rows with ``prompt``, ``answer``, ``difficulty``.
        samples: Samples per prompt at temperature 1.
        sample_rows: Use only the first N rows for sampling (default: all).
        seed: Sampling seed.
        llm: Reuse an existing engine.

    Returns:
        ``greedy_accuracy``, ``greedy_by_difficulty``, ``greedy_by_style``, ``greedy_boxed_fraction``,
        ``solve_buckets`` (fractions of prompts
        solved 0, 1..samples-1 and all of ``samples``), ``pass_at_k``, ``mean_sample_accuracy``.
    """
    from vllm import SamplingParams

    llm = llm or make_llm(model_dir, seed=seed)
    tok = llm.get_tokenizer()
    prompts = [render_prompt(tok, r["prompt"]) for r in rows]
    greedy = llm.generate(
        prompts, SamplingParams(temperature=0.0, max_tokens=MAX_RESPONSE_TOKENS), use_tqdm=False
    )
    by_diff: dict[int, list[bool]] = defaultdict(list)
    by_style: dict[str, list[bool]] = defaultdict(list)
    boxed = 0
    for row, out in zip(rows, greedy):
        ok = is_correct(out.outputs[0].text, row["answer"])
        by_diff[int(row.get("difficulty", 0))].append(ok)
        by_style[str(row.get("prompt_style", "plain"))].append(ok)
        boxed += extract_boxed(out.outputs[0].text) is not None
    n_rows = len(rows) if sample_rows is None else min(sample_rows, len(rows))
    sampled = llm.generate(
        prompts[:n_rows],
        SamplingParams(temperature=1.0, n=samples, max_tokens=MAX_RESPONSE_TOKENS, seed=seed),
        use_tqdm=False,
    )
    solved = [sum(is_correct(o.text, row["answer"]) for o in out.outputs) for row, out in zip(rows, sampled)]
    flat = [ok for oks in by_diff.values() for ok in oks]
    return {
        "greedy_accuracy": sum(flat) / max(1, len(flat)),
        "greedy_by_difficulty": {d: sum(v) / len(v) for d, v in sorted(by_diff.items())},
        "greedy_by_style": {k: sum(v) / len(v) for k, v in sorted(by_style.items())},
        "greedy_boxed_fraction": boxed / max(1, len(rows)),
        "solve_buckets": {
            "none": sum(s == 0 for s in solved) / max(1, n_rows),
            "some": sum(0 < s < samples for s in solved) / max(1, n_rows),
            "all": sum(s == samples for s in solved) / max(1, n_rows),
        },
        "pass_at_k": sum(s > 0 for s in solved) / max(1, n_rows),
        "mean_sample_accuracy": sum(solved) / max(1, n_rows * samples),
        "samples_per_prompt": samples,
        "n_greedy": len(flat),
        "n_sampled": n_rows,
    }
