"""Generate on held-out prompts, verify in the reward sandbox, and summarise (pass@k, avg@n, maj@k).

Works with anything that has ``generate(prompt_ids, n=, temperature=, top_p=, max_tokens=, seed=)``: a
``RolloutGroup`` during training, or a bare ``RolloutEngine`` in ``rlvr eval``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rlvr.eval.metrics import DEFAULT_BREAKDOWN_FIELDS, compute_eval_metrics

# A breakdown field with at most this many values also gets flat `accuracy/<field>/<value>` summary keys.
MAX_SUMMARY_GROUPS = 8


def evaluate_prompts(
    engine: Any,
    scorer: Any,
    rows: list[dict[str, Any]],
    prompt_ids: list[list[int]],
    *,
    samples_per_prompt: int,
    temperature: float,
    top_p: float = 1.0,
    max_tokens: int,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Evaluate; returns ``{"summary": flat metrics, "result": compute_eval_metrics(...), "records": [...]}``.

    ``summary["accuracy"]`` is avg@n (with greedy decoding and n = 1: plain held-out accuracy). ``log``
    gets one line with the prompt count, times and accuracy.
    """
    t0 = time.perf_counter()
    groups = engine.generate(
        prompt_ids,
        n=samples_per_prompt,
        temperature=temperature,
        top_p=top_p,
        max_tokens=max_tokens,
        seed=seed,
    )
    texts = [c.text for group in groups for c in group]
    flat_rows = [row for row, group in zip(rows, groups) for _ in group]
    lengths = [len(c.token_ids) for group in groups for c in group]
    t1 = time.perf_counter()
    results, reward_metrics = scorer.score(texts, flat_rows, lengths)
    t2 = time.perf_counter()
    records, k = [], 0
    for i, (row, group) in enumerate(zip(rows, groups)):
        samples = []
        for c in group:
            res = results[k]
            k += 1
            samples.append(
                {"correct": bool(res.correct), "answer": res.extracted, "length": len(c.token_ids)}
            )
        fields = {f: row[f] for f in DEFAULT_BREAKDOWN_FIELDS if f in row}
        records.append({"prompt_id": row.get("id", i), "fields": fields, "samples": samples})
    result = compute_eval_metrics(records, breakdown_fields=DEFAULT_BREAKDOWN_FIELDS)
    summary = {key: value for key, value in result["metrics"].items() if isinstance(value, int | float)}
    summary["accuracy"] = result["metrics"][f"avg@{result['n']}"]
    for field, groups_by_value in result["breakdown"].items():
        if len(groups_by_value) <= MAX_SUMMARY_GROUPS:
            for value, metrics in groups_by_value.items():
                summary[f"accuracy/{field}/{value}"] = metrics[f"avg@{result['n']}"]
    summary["reward_errors"] = float(reward_metrics.get("reward/errors", 0))
    if log is not None:
        log(
            f"eval: {len(rows)} prompts x {samples_per_prompt} in {t2 - t0:.1f}s "
            f"(generate {t1 - t0:.1f}s, verify {t2 - t1:.1f}s), accuracy {summary['accuracy']:.3f}"
        )
    return {"summary": summary, "result": result, "records": records}
