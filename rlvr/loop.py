"""The RL loop, one named phase per function: generate → reward → filter → advantage → update → sync → log.

`train(recipe)` is the whole story; `rlvr.run.Run` owns the heavy parts (rollout workers, learner ranks,
reward pool, checkpoints) so that this file reads top to bottom without any Ray, vLLM or DeepSpeed detail.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from rlvr.batch import StepSamples, group_slices
from rlvr.config import Recipe
from rlvr.run import Run

log = logging.getLogger("rlvr.loop")


def train(recipe: Recipe, *, resume: str | None = None, recipe_dir: str | None = None) -> dict[str, Any]:
    """Run (or continue) a training run to `recipe.train.steps`; return the last step's metrics."""
    last: dict[str, Any] = {}
    with Run.open(recipe, resume=resume, recipe_dir=recipe_dir) as run:
        if run.step == 0 and recipe.eval.every_steps and recipe.eval.at_start:
            run.logger.log(0, run.evaluate())
        while run.step < recipe.train.steps and not run.stop_requested:
            t0 = time.perf_counter()
            timer: dict[str, float] = {}
            samples = timed(timer, "generate", generate, run)
            timed(timer, "reward", reward, run, samples)
            samples = timed(timer, "filter", filter_groups, run, samples)
            run.prefetch_next()  # one-step-off async: the next batch generates while the learners update
            run.rollout_sleep()  # colocated placement: free the shared device for the learners
            timed(timer, "logprobs", old_logprobs, run, samples)
            timed(timer, "advantage", advantages, run, samples)
            update_metrics = timed(timer, "update", update, run, samples)
            run.rollout_wake()
            sync_metrics = timed(timer, "sync", sync, run)
            run.step += 1
            last = step_metrics(run, samples, update_metrics, sync_metrics, timer, time.perf_counter() - t0)
            if recipe.eval.every_steps and run.step % recipe.eval.every_steps == 0:
                last.update(run.evaluate())
            run.logger.log(run.step, last)
            if run.should_checkpoint():
                run.save_checkpoint()
            run.check_stop_hook()
    return last


def timed(timer: dict[str, float], name: str, fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    timer[name] = time.perf_counter() - t0
    return out


def generate(run: Run) -> StepSamples:
    """Sample `samples_per_prompt` completions for the next `prompts_per_step` prompts (or take the prefetch)."""
    return run.next_samples()


def reward(run: Run, samples: StepSamples) -> None:
    """Score every completion in the sandboxed verifier pool (raises if too many items error)."""
    results, run.reward_metrics = run.scorer.score(samples.texts, samples.rows, samples.lengths)
    samples.rewards = [r.score for r in results]
    samples.correct = [bool(r.correct) for r in results]
    samples.answers = [r.extracted for r in results]
    if run.overlong is not None:
        samples.rewards = run.overlong(samples.rewards, samples.lengths)


def filter_groups(run: Run, samples: StepSamples) -> StepSamples:
    """DAPO dynamic sampling: keep groups that carry signal, topping up with fresh prompts if configured."""
    if run.group_filter is None:
        return samples
    return run.group_filter(samples, run)


def old_logprobs(run: Run, samples: StepSamples) -> None:
    """Behaviour-policy logprobs (and entropy, reference logprobs when needed) recomputed by the learners."""
    out = run.score_on_learners(samples, entropy=run.needs_old_entropy, reference=run.needs_reference)
    samples.old_logprobs, samples.old_entropy, samples.ref_logprobs = out


def advantages(run: Run, samples: StepSamples) -> None:
    """Per-token advantages from the configured estimator (pure torch, `rlvr.algo`)."""
    samples.advantages = run.algorithm.advantages(samples)


def update(run: Run, samples: StepSamples) -> dict[str, float]:
    """`updates_per_step` optimizer updates over mini-batches of whole groups, on every learner rank."""
    return run.update_learners(samples)


def sync(run: Run) -> dict[str, float]:
    """Push the new weights to every rollout worker and verify them with a logprob probe."""
    return run.sync_weights()


def step_metrics(
    run: Run,
    samples: StepSamples,
    update_metrics: dict[str, float],
    sync_metrics: dict[str, float],
    timer: dict[str, float],
    step_seconds: float,
) -> dict[str, Any]:
    """What one step logs: reward, accuracy, lengths (correct vs wrong), learner and sync metrics, time."""
    lengths = samples.lengths
    n = max(len(samples), 1)
    right = [length for length, c in zip(lengths, samples.correct) if c]
    wrong = [length for length, c in zip(lengths, samples.correct) if not c]
    groups = group_slices(samples.group_ids)
    solved = [sum(samples.correct[i] for i in g) for g in groups]
    metrics: dict[str, Any] = {
        "reward/mean": sum(samples.rewards) / n,
        "accuracy/mean": sum(samples.correct) / n,
        "accuracy/all_correct_groups": sum(s == len(g) for s, g in zip(solved, groups)) / max(len(groups), 1),
        "accuracy/all_wrong_groups": sum(s == 0 for s in solved) / max(len(groups), 1),
        "response_length/mean": sum(lengths) / n,
        "response_length/max": max(lengths, default=0),
        "response_length/correct_mean": sum(right) / len(right) if right else 0.0,
        "response_length/wrong_mean": sum(wrong) / len(wrong) if wrong else 0.0,
        "response_length/truncated_frac": sum(samples.truncated) / n,
        "time/step_s": step_seconds,
        "throughput/tokens_per_s": (sum(lengths) + sum(map(len, samples.prompt_ids)))
        / max(step_seconds, 1e-9),
    }
    metrics.update({f"time/{k}_s": v for k, v in timer.items()})
    metrics.update({k.replace("reward/", "reward_pool/", 1): v for k, v in run.reward_metrics.items()})
    metrics.update(run.algorithm.metrics)
    metrics.update(update_metrics)
    metrics.update(sync_metrics)
    return metrics
