"""Held-out evaluation of the tiny model with an in-process rollout engine and the recipe default reward.

Reports greedy accuracy (overall, per difficulty and per prompt style, with the fraction of greedy
answers the reward could read) and, at temperature 1 with 8 samples per prompt, the fraction of prompts solved
0/8, 1-7/8 and 8/8: the spread RL learns from. The figures come from the same code as a run's
``eval/accuracy`` and ``rlvr eval``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

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
) -> dict[str, Any]:
    """Greedy accuracy and temperature-1 solve buckets on held-out rows, through the evaluation code of
    `eval/accuracy` and `rlvr eval` (`rlvr.eval.runner.evaluate_prompts`, the recipe default reward).

    Args:
        model_dir: HF model folder.
        rows: Rows with ``prompt``, ``answer``, ``difficulty``, ``prompt_style``.
        samples: Samples per prompt at temperature 1.
        sample_rows: Use only the first N rows for sampling (default: all).
        seed: Sampling seed.

    Returns:
        ``greedy_accuracy``, ``greedy_by_difficulty``, ``greedy_by_style``, ``greedy_boxed_fraction`` (the
        reward found a final answer), ``solve_buckets`` (fractions of prompts solved 0, 1..samples-1 and all
        of ``samples``), ``pass_at_k``, ``mean_sample_accuracy``.
    """
    from rlvr.config.reward import RewardsConfig
    from rlvr.config.rollout import RolloutConfig
    from rlvr.eval.runner import evaluate_prompts
    from rlvr.reward.scorer import RewardScorer
    from rlvr.rollout.engine import RolloutEngine

    cfg = RolloutConfig(
        max_prompt_tokens=160, max_response_tokens=MAX_RESPONSE_TOKENS, kv_cache_memory_mb=256
    )
    engine = RolloutEngine(model_dir, cfg, seed=seed)
    tok = engine.llm.get_tokenizer()
    rows = list(rows)
    prompt_ids = [tok(render_prompt(tok, r["prompt"]), add_special_tokens=False)["input_ids"] for r in rows]
    scorer = RewardScorer.from_config(RewardsConfig())
    try:
        greedy = evaluate_prompts(
            engine,
            scorer,
            rows,
            prompt_ids,
            samples_per_prompt=1,
            temperature=0.0,
            max_tokens=MAX_RESPONSE_TOKENS,
        )
        n_rows = len(rows) if sample_rows is None else min(sample_rows, len(rows))
        sampled = evaluate_prompts(
            engine,
            scorer,
            rows[:n_rows],
            prompt_ids[:n_rows],
            samples_per_prompt=samples,
            temperature=1.0,
            max_tokens=MAX_RESPONSE_TOKENS,
            seed=seed,
        )
    finally:
        scorer.close()
    summary = greedy["summary"]
    solved = [sum(s["correct"] for s in rec["samples"]) for rec in sampled["records"]]
    answered = [rec["samples"][0]["answer"] is not None for rec in greedy["records"]]
    return {
        "greedy_accuracy": summary["accuracy"],
        "greedy_by_difficulty": _breakdown(summary, "difficulty"),
        "greedy_by_style": _breakdown(summary, "prompt_style"),
        "greedy_boxed_fraction": sum(answered) / max(1, len(rows)),
        "solve_buckets": {
            "none": sum(s == 0 for s in solved) / max(1, n_rows),
            "some": sum(0 < s < samples for s in solved) / max(1, n_rows),
            "all": sum(s == samples for s in solved) / max(1, n_rows),
        },
        "pass_at_k": sum(s > 0 for s in solved) / max(1, n_rows),
        "mean_sample_accuracy": sum(solved) / max(1, n_rows * samples),
        "samples_per_prompt": samples,
        "n_greedy": len(rows),
        "n_sampled": n_rows,
    }


def _breakdown(summary: dict[str, Any], field: str) -> dict[str, float]:
    prefix = f"accuracy/{field}/"
    return {k[len(prefix) :]: v for k, v in sorted(summary.items()) if k.startswith(prefix)}
