"""Pure parts of `bench/compare_trl.py`: model sizes, the rlvr recipe, step statistics, idle wait, CPU use.

Nothing here imports torch, TRL or rlvr's heavy stack, so the unit tests (tests/test_bench_compare.py) run
without them.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

# Random-init Qwen2 sizes on the tiny model's 320-token vocabulary (head_dim 128, GQA 4:1 on 72 M). The
# tiny SFT model is the project's own build (rlvr.tiny), ~1 M parameters.
RANDOM_ARCHS: dict[str, dict[str, Any]] = {
    "18m": {
        "hidden_size": 512,
        "intermediate_size": 1536,
        "num_hidden_layers": 6,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 512,
    },
    "72m": {
        "hidden_size": 1024,
        "intermediate_size": 3072,
        "num_hidden_layers": 6,
        "num_attention_heads": 8,
        "num_key_value_heads": 2,
        "max_position_embeddings": 512,
    },
}
MODELS = ("tiny", *RANDOM_ARCHS)
# Prompts of the synthetic task are < 30 tokens with the chat template; the recipe caps them here.
MAX_PROMPT_TOKENS = 48


def parse_models(text: str) -> list[str]:
    """``"tiny,18m"`` -> ``["tiny", "18m"]``; an unknown name raises ValueError naming the known ones."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if not names:
        raise ValueError("--models is empty")
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        raise ValueError(f"--models: unknown {', '.join(unknown)} (known: {', '.join(MODELS)})")
    return names


def kv_cache_mb(
    arch: Mapping[str, Any], sequences: int, tokens_per_sequence: int, headroom: float = 1.5
) -> int:
    """MiB of fp32 KV cache that holds `sequences` x `tokens_per_sequence` tokens (with headroom), >= 64."""
    head_dim = arch["hidden_size"] // arch["num_attention_heads"]
    per_token = 2 * arch["num_hidden_layers"] * arch["num_key_value_heads"] * head_dim * 4
    need = per_token * sequences * tokens_per_sequence * headroom / 2**20
    return max(64, math.ceil(need))


def rlvr_recipe(
    *,
    name: str,
    model_path: str,
    prompts_file: str,
    run_dir: str,
    steps: int,
    prompts_per_step: int,
    samples_per_prompt: int,
    max_new_tokens: int,
    kv_cache_memory_mb: int,
    lr: float = 1e-6,
    seed: int = 0,
    async_mode: str = "off",
) -> dict[str, Any]:
    """The rlvr recipe of one benchmark run: the equal-work settings, everything else at rlvr's defaults.

    One optimizer update on all samples per step, fp32, no KL, 1 learner rank, no eval; checkpoints only the
    final one rlvr always writes (after the last timed step, without the HF export). `async_mode` is the
    recipe's `train.async_mode` (`one_step_off` generates step t+1 while the learner trains on step t).
    """
    return {
        "name": name,
        "seed": seed,
        "device": "cpu",
        "model": {"path": model_path, "dtype": "float32"},
        "data": {
            "train": {
                "source": prompts_file,
                "format": "generic",
                "prompt_key": "prompt",
                "answer_key": "answer",
                "template": "chat",
                "shuffle": False,
            },
            "eval": None,
        },
        "rollout": {
            "samples_per_prompt": samples_per_prompt,
            "max_prompt_tokens": MAX_PROMPT_TOKENS,
            "max_response_tokens": max_new_tokens,
            "temperature": 1.0,
            "kv_cache_memory_mb": kv_cache_memory_mb,
        },
        "learner": {
            "num_ranks": 1,
            "lr": lr,
            "lr_schedule": {"type": "constant", "warmup_updates": 0},
            "updates_per_step": 1,
        },
        "algorithm": {"estimator": {"name": "grpo"}, "kl_to_ref": None},
        "rewards": {"terms": [{"fn": "math"}]},
        "train": {"steps": steps, "prompts_per_step": prompts_per_step, "async_mode": async_mode},
        "eval": {"every_steps": 0, "at_start": False},
        "checkpoint": {"every_steps": 0, "export_hf": False},
        "logging": {"run_dir": run_dir, "tensorboard": False, "progress": True},
    }


def rlvr_steps(records: Iterable[Mapping[str, Any]], samples_per_step: int) -> list[dict[str, Any]]:
    """Per-step time, generated tokens and phase times from rlvr's metrics.jsonl records.

    A step record carries ``time/step_s`` and one ``time/<phase>_s`` per loop phase (the first one also
    ``time/startup_s``, kept as ``startup_s``); records without a step time (an evaluation logged on its own)
    are skipped. Tokens are the mean response length x samples.
    """
    steps = []
    for rec in records:
        if "time/step_s" not in rec:
            continue
        phases = {
            k[len("time/") : -len("_s")]: float(v)
            for k, v in rec.items()
            if k.startswith("time/") and k.endswith("_s") and k not in ("time/step_s", "time/startup_s")
        }
        tokens = float(rec.get("response_length/mean", 0.0)) * samples_per_step
        steps.append({"step_s": float(rec["time/step_s"]), "tokens": tokens, "phases": phases})
        if "time/startup_s" in rec:  # the first step's record: process start to the first step
            steps[-1]["startup_s"] = float(rec["time/startup_s"])
    return steps


def step_stats(values: Iterable[float], skip_first: int = 1) -> dict[str, float | int]:
    """Median, min, max and count of `values` after dropping the first `skip_first` (warm-up) steps.

    With fewer values than that, all of them are used (a 1-step run still reports something).
    """
    vals = [float(v) for v in values]
    kept = vals[skip_first:] if len(vals) > skip_first else vals
    if not kept:
        return {"median": float("nan"), "min": float("nan"), "max": float("nan"), "n": 0}
    return {"median": statistics.median(kept), "min": min(kept), "max": max(kept), "n": len(kept)}


def phase_stats(steps: list[Mapping[str, float]], skip_first: int = 1) -> dict[str, dict[str, float | int]]:
    """`step_stats` of every key that appears in the per-step dicts (missing values are skipped)."""
    keys = list(dict.fromkeys(k for s in steps for k in s))
    return {
        k: step_stats([s[k] for s in steps[skip_first:] if k in s] or [s[k] for s in steps if k in s], 0)
        for k in keys
    }


def ratio(numerator: float, denominator: float) -> float:
    """`numerator / denominator`, NaN when either is missing or the denominator is not positive."""
    if not (numerator == numerator and denominator == denominator) or denominator <= 0:
        return float("nan")
    return numerator / denominator


def wait_for_idle(
    read_load: Callable[[], float],
    threshold: float,
    max_wait_s: float,
    *,
    poll_s: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Poll `read_load` (1-minute load average) until it is below `threshold` or `max_wait_s` has passed.

    Returns ``{"idle": bool, "waited_s": float, "load": last reading}``; a timeout is not an error (the run
    goes ahead and the report says the machine was busy).
    """
    start = clock()
    while True:
        load = float(read_load())
        waited = clock() - start
        if load < threshold:
            return {"idle": True, "waited_s": waited, "load": load}
        if waited >= max_wait_s:
            return {"idle": False, "waited_s": waited, "load": load}
        sleep(min(poll_s, max(max_wait_s - waited, 0.0)))


def other_cpu(
    before: Mapping[int, tuple[str, float, float]],
    after: Mapping[int, tuple[str, float, float]],
    ours: set[int],
    top: int = 5,
) -> dict[str, Any]:
    """CPU seconds used between two snapshots by processes that are not ours.

    Args:
        before, after: ``{pid: (name, start time, cumulative cpu seconds)}``. A pid only in `after`, or one
            whose start time changed (a reused pid), started in between and counts from zero. The name is only
            reported: Ray retitles its workers per task, so a changed name is the same process.
        ours: pids of the benchmark and its children (excluded).
        top: how many of the busiest other processes to name.
    """
    used: dict[int, tuple[str, float]] = {}
    for pid, (name, started, cpu) in after.items():
        if pid in ours:
            continue
        prev = before.get(pid)
        delta = cpu - (prev[2] if prev and prev[1] == started else 0.0)
        if delta > 0:
            used[pid] = (name, delta)
    busiest = sorted(used.items(), key=lambda kv: -kv[1][1])[:top]
    return {
        "cpu_s": sum(d for _, d in used.values()),
        "top": [{"pid": pid, "name": name, "cpu_s": round(d, 2)} for pid, (name, d) in busiest],
    }


def fmt_range(stats: Mapping[str, float | int], unit: str = "s") -> str:
    """``"2.13 s (2.01–2.40)"``."""
    return f"{stats['median']:.2f} {unit} ({stats['min']:.2f}–{stats['max']:.2f})"
