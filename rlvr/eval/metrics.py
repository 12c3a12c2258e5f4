"""Evaluation metrics over n sampled answers per prompt: pass@k, avg@n, maj@k, lengths, breakdowns.

Pure Python (no torch, no numpy needed), so the metric definitions can be read and tested alone.

Input: one record per prompt::

    {"prompt_id": "gsm8k-17",
     "fields": {"difficulty": "hard", "data_source": "gsm8k"},      # optional, for breakdowns
     "samples": [{"correct": True, "answer": "42", "length": 118}, ...]}   # n samples, in order

Definitions (n = samples of a prompt, c = correct among them; every metric is a mean over prompts):

- ``pass@k``: unbiased estimator of Chen et al. 2021 ("Evaluating Large Language Models Trained
  on Code", eq. 1): ``1 - C(n-c, k) / C(n, k)``, the probability that a random k-subset of the n
  samples contains a correct one. Computed as ``1 - prod_{i=n-c+1..n} (1 - k/i)`` to avoid huge
  binomials. Taking the max over the first k samples ("best@k") is biased; this is not.
- ``avg@n``: mean accuracy over all n samples (``c / n``), the expected accuracy of one sample.
- ``maj@k``: majority vote over the extracted answers of the FIRST k samples (generation order),
  for the same k values as pass@k. A sample with ``answer=None`` (nothing extracted) casts no
  vote; if no sample voted the prompt counts as wrong. Ties are broken deterministically in
  favour of the tied answer that appears earliest among the k samples (neither optimistic nor
  dependent on hash order). The vote is correct if the first sample carrying the winning answer
  is correct. Answers are compared as strings after ``strip()``; normalising equivalent forms
  ("0.5" vs "1/2") is the answer extractor's job.
- lengths: mean response length (tokens) over all, correct, and wrong samples (None if empty).
- ``no_answer_rate``: fraction of samples with ``answer=None``.

k values: 1, 2, 4, ... up to n, plus n itself, where n is the smallest sample count of any
prompt (so every prompt contributes to every k).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

DEFAULT_BREAKDOWN_FIELDS = ("difficulty", "level", "subject", "data_source", "prompt_style")
MISSING_FIELD = "(missing)"


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one prompt (Chen et al. 2021, eq. 1).

    Args:
        n: Samples drawn.
        c: Correct samples among them.
        k: Subset size, ``1 <= k <= n``.

    Returns:
        ``1 - C(n-c, k) / C(n, k)``.
    """
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got k={k}, n={n}")
    if n - c < k:
        return 1.0
    prob_all_wrong = 1.0
    for i in range(n - c + 1, n + 1):
        prob_all_wrong *= 1.0 - k / i
    return 1.0 - prob_all_wrong


def default_ks(n: int) -> list[int]:
    """1, 2, 4, ... <= n, plus n itself."""
    if n < 1:
        raise ValueError(f"need at least one sample per prompt, got n={n}")
    ks, k = [], 1
    while k <= n:
        ks.append(k)
        k *= 2
    if ks[-1] != n:
        ks.append(n)
    return ks


def majority_vote(samples: Sequence[Mapping[str, Any]]) -> tuple[str | None, bool]:
    """The majority answer of ``samples`` and whether it is correct (tie rule in module docstring).

    Returns:
        ``(answer, correct)``; ``(None, False)`` if no sample has an answer.
    """
    votes: Counter[str] = Counter()
    first_seen: dict[str, int] = {}
    first_correct: dict[str, bool] = {}
    for index, sample in enumerate(samples):
        answer = sample.get("answer")
        if answer is None:
            continue
        key = str(answer).strip()
        votes[key] += 1
        if key not in first_seen:
            first_seen[key] = index
            first_correct[key] = bool(sample["correct"])
    if not votes:
        return None, False
    winner = min(votes, key=lambda a: (-votes[a], first_seen[a]))
    return winner, first_correct[winner]


def _mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return sum(values) / len(values) if values else None


def _validate(records: Sequence[Mapping[str, Any]]) -> None:
    if not records:
        raise ValueError("no evaluation records")
    for record in records:
        samples = record.get("samples")
        if not samples:
            raise ValueError(f"prompt {record.get('prompt_id')!r} has no samples")
        for sample in samples:
            if not isinstance(sample.get("correct"), bool):
                raise ValueError(f"prompt {record.get('prompt_id')!r}: sample 'correct' must be bool")


def summarize(records: Sequence[Mapping[str, Any]], ks: Sequence[int], n: int) -> dict[str, Any]:
    """Flat metric dict for one group of prompts.

    Args:
        records: Prompts of the group, each with at least ``max(ks)`` samples.
        ks: k values for pass@k and maj@k.
        n: Samples per prompt of the whole evaluation; names the ``avg@n`` key so every group
            uses the same key (each prompt's accuracy is over all of its own samples).
    """
    samples = [s for r in records for s in r["samples"]]
    metrics: dict[str, Any] = {"num_prompts": len(records), "num_samples": len(samples)}
    for k in ks:
        metrics[f"pass@{k}"] = _mean(
            pass_at_k(len(r["samples"]), sum(s["correct"] for s in r["samples"]), k) for r in records
        )
    metrics[f"avg@{n}"] = _mean(sum(s["correct"] for s in r["samples"]) / len(r["samples"]) for r in records)
    for k in ks:
        metrics[f"maj@{k}"] = _mean(float(majority_vote(r["samples"][:k])[1]) for r in records)
    metrics["no_answer_rate"] = _mean(float(s.get("answer") is None) for s in samples)
    metrics["length/mean"] = _mean(s["length"] for s in samples)
    metrics["length/correct_mean"] = _mean(s["length"] for s in samples if s["correct"])
    metrics["length/wrong_mean"] = _mean(s["length"] for s in samples if not s["correct"])
    return metrics


def compute_eval_metrics(
    records: Sequence[Mapping[str, Any]],
    ks: Sequence[int] | None = None,
    breakdown_fields: Sequence[str] = DEFAULT_BREAKDOWN_FIELDS,
) -> dict[str, Any]:
    """All evaluation metrics for a set of prompts, plus per-field breakdowns.

    Args:
        records: One dict per prompt (format in the module docstring).
        ks: k values for pass@k and maj@k; default :func:`default_ks` of the smallest n.
        breakdown_fields: Keys of ``record["fields"]`` to group by when at least one record has
            them; records lacking the field are grouped under ``"(missing)"``.

    Returns:
        JSON-serialisable ``{"n", "ks", "metrics": {...}, "breakdown": {field: {value: {...}}}}``.
    """
    _validate(records)
    n = min(len(r["samples"]) for r in records)
    ks = sorted(set(ks)) if ks is not None else default_ks(n)
    if ks[0] < 1 or ks[-1] > n:
        raise ValueError(f"k values {ks} must lie in [1, {n}] (smallest samples per prompt)")
    breakdown: dict[str, dict[str, Any]] = {}
    for field in breakdown_fields:
        if not any(field in (r.get("fields") or {}) for r in records):
            continue
        groups: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
        for record in records:
            value = (record.get("fields") or {}).get(field, MISSING_FIELD)
            groups[str(value)].append(record)
        breakdown[field] = {value: summarize(groups[value], ks, n) for value in sorted(groups)}
    return {
        "n": n,
        "n_max": max(len(r["samples"]) for r in records),
        "ks": list(ks),
        "metrics": summarize(records, ks, n),
        "breakdown": breakdown,
    }


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value) >= 10 else f"{value:.4f}"
    return str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return lines


def render_markdown(result: Mapping[str, Any], title: str = "Evaluation") -> str:
    """Markdown report: a summary table and one table per breakdown field.

    Args:
        result: Output of :func:`compute_eval_metrics`.
        title: Heading of the report.
    """
    metrics = result["metrics"]
    lines = [
        f"# {title}",
        "",
        f"{metrics['num_prompts']} prompts, n = {result['n']} samples per prompt"
        + (f" (max {result['n_max']})" if result.get("n_max", result["n"]) != result["n"] else "")
        + ". pass@k is the unbiased estimator (Chen et al. 2021); maj@k votes over the first k samples.",
        "",
    ]
    lines += _table(["metric", "value"], list(metrics.items()))
    columns = [f"pass@{k}" for k in result["ks"]] + [f"avg@{result['n']}", f"maj@{result['ks'][-1]}"]
    columns += ["length/correct_mean", "length/wrong_mean"]
    for field, groups in result["breakdown"].items():
        lines += ["", f"## By {field}", ""]
        rows = [[value, g["num_prompts"], *(g.get(c) for c in columns)] for value, g in groups.items()]
        lines += _table([field, "prompts", *columns], rows)
    return "\n".join(lines) + "\n"
