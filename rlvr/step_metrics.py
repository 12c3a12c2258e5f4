"""What one step's samples say, as logged metrics: the policy's outcomes, the group filter, the reward pool.

Under dynamic sampling a step generates several rounds and trains on the groups that carry signal. The
main figures (`reward/mean`, `accuracy/*`, `response_length/*`) describe everything the policy generated
in the step, over all rounds, before the filter; `filter/*` says what the filter kept and how the kept
samples scored. Without a filter both sets are the same samples.
"""

from __future__ import annotations

from typing import Any

from rlvr.algo.mismatch import logprob_mismatch
from rlvr.batch import StepSamples, group_slices

# Reward-pool metrics that are per-sample means (recomputed over all rounds); every other one is a count of
# items (errors, timeouts, filtered, ...) and is summed.
POOL_MEAN_KEYS = ("reward/mean", "reward/accuracy")


def is_pool_mean(key: str) -> bool:
    return key in POOL_MEAN_KEYS or key.endswith("_rate") or key.startswith("reward/term/")


def outcome_metrics(samples: StepSamples) -> dict[str, float]:
    """Reward, accuracy, solved-group fractions and response lengths of `samples`."""
    lengths = samples.lengths
    n = max(len(samples), 1)
    right = [length for length, c in zip(lengths, samples.correct) if c]
    wrong = [length for length, c in zip(lengths, samples.correct) if not c]
    groups = group_slices(samples.group_ids)
    solved = [sum(samples.correct[i] for i in g) for g in groups]
    n_groups = max(len(groups), 1)
    return {
        "reward/mean": sum(samples.rewards) / n,
        "accuracy/mean": sum(samples.correct) / n,
        "accuracy/all_correct_groups": sum(s == len(g) for s, g in zip(solved, groups)) / n_groups,
        "accuracy/all_wrong_groups": sum(s == 0 for s in solved) / n_groups,
        "response_length/mean": sum(lengths) / n,
        "response_length/max": max(lengths, default=0),
        "response_length/correct_mean": sum(right) / len(right) if right else 0.0,
        "response_length/wrong_mean": sum(wrong) / len(wrong) if wrong else 0.0,
        "response_length/truncated_frac": sum(samples.truncated) / n,
    }


def filter_metrics(generated: StepSamples, trained: StepSamples) -> dict[str, float]:
    """How much of the generated step the group filter kept, and how the kept (trained) samples scored."""
    n_generated = max(len(set(generated.group_ids)), 1)
    n = max(len(trained), 1)
    return {
        "filter/generated_groups": float(len(set(generated.group_ids))),
        "filter/kept_groups_frac": len(set(trained.group_ids)) / n_generated,
        "filter/kept_accuracy_mean": sum(trained.correct) / n,
        "filter/kept_reward_mean": sum(trained.rewards) / n,
    }


def mismatch_metrics(samples: StepSamples) -> dict[str, float]:
    """`mismatch/*`: the rollout engine's logprobs of the trained tokens against the learner's old logprobs.

    Under one-step-off async the batch was sampled one policy version back, so the figure includes that lag.
    """
    import torch

    from rlvr.learner.rl_tensors import to_padded

    if not samples.old_logprobs or not samples.rollout_logprobs:
        return {}
    lengths = samples.lengths
    width = max(max(lengths, default=1), 1)
    mask = to_padded([[1.0] * n for n in lengths], width, torch.float64)
    rollout = to_padded(samples.rollout_logprobs, width, torch.float64)
    learner = to_padded(samples.old_logprobs, width, torch.float64)
    return logprob_mismatch(rollout, learner, mask)


def pool_metrics(rounds: list[tuple[int, dict[str, float]]]) -> dict[str, float]:
    """The reward pool's metrics over every generation round of a step, as `reward_pool/*`.

    Args:
        rounds: ``(number of samples scored, the scorer's metrics)`` per round.

    Counts are summed; means are recomputed over all samples (weighted by each round's sample count, so a
    term mean is exact when no item of that term failed).
    """
    total = sum(n for n, _ in rounds)
    out: dict[str, float] = {}
    for key in dict.fromkeys(k for _, m in rounds for k in m):
        if is_pool_mean(key):
            weighted = [(n, m[key]) for n, m in rounds if key in m]
            value = sum(n * v for n, v in weighted) / max(sum(n for n, _ in weighted), 1)
        else:
            value = sum(m.get(key, 0.0) for _, m in rounds)
        out[key.replace("reward/", "reward_pool/", 1)] = float(value)
    if rounds:
        out["reward_pool/scored_samples"] = float(total)
    return out


def sample_metrics(
    generated: StepSamples,
    trained: StepSamples,
    reward_rounds: list[tuple[int, dict[str, float]]],
    step_seconds: float,
) -> dict[str, Any]:
    """The sample-derived part of a step's metrics (the loop adds timings, learner and sync metrics)."""
    metrics: dict[str, Any] = outcome_metrics(generated)
    if trained is not generated:
        metrics.update(filter_metrics(generated, trained))
    tokens = sum(generated.lengths) + sum(map(len, generated.prompt_ids))
    metrics["time/step_s"] = step_seconds
    metrics["throughput/tokens_per_s"] = tokens / max(step_seconds, 1e-9)
    metrics.update(pool_metrics(reward_rounds))
    metrics.update(mismatch_metrics(trained))
    return metrics
