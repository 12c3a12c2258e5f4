"""The RL loop, one named phase per function: generate → reward → filter → advantage → update → sync → log.

`train(recipe)` is the whole story; `rlvr.run.Run` owns the heavy parts (rollout workers, learner ranks,
reward pool, checkpoints) so that this file reads top to bottom without any Ray, vLLM or DeepSpeed detail.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from rlvr.batch import StepSamples
from rlvr.config import Recipe
from rlvr.run import Run
from rlvr.step_metrics import sample_metrics

log = logging.getLogger("rlvr.loop")


def train(
    recipe: Recipe,
    *,
    resume: str | None = None,
    recipe_dir: str | None = None,
    checkpoints: Any = None,
    transport: Any = None,
) -> dict[str, Any]:
    """Run (or continue) a training run to `recipe.train.steps`; return the last step's metrics.

    SIGTERM finishes the current step, checkpoints and returns. `checkpoints` (a CheckpointManager) and
    `transport` (a WeightTransport) replace the recipe's defaults, for tests that inject faults through them.
    """
    last: dict[str, Any] = {}
    with Run.open(
        recipe, resume=resume, recipe_dir=recipe_dir, checkpoints=checkpoints, transport=transport
    ) as run:
        if run.step == 0 and recipe.eval.every_steps and recipe.eval.at_start:
            run.logger.log(0, run.evaluate())
        while run.step < recipe.train.steps and not run.stop_requested:
            t0 = time.perf_counter()
            timer: dict[str, float] = {}
            run.reward_rounds = []  # the reward pool's metrics of every generation round of this step
            samples = timed(timer, "generate", generate, run)
            timed(timer, "reward", reward, run, samples)
            generated, samples = timed(timer, "filter", filter_groups, run, samples)
            run.prefetch_next()  # one-step-off async: the next batch generates while the learners update
            run.rollout_sleep()  # colocated placement: free the shared device for the learners
            timed(timer, "logprobs", old_logprobs, run, samples)
            timed(timer, "advantage", advantages, run, samples)
            update_metrics = timed(timer, "update", update, run, samples)
            run.rollout_wake()
            sync_metrics = timed(timer, "sync", sync, run)
            run.step += 1
            seconds = time.perf_counter() - t0
            last = step_metrics(run, generated, samples, update_metrics, sync_metrics, timer, seconds)
            if recipe.eval.every_steps and run.step % recipe.eval.every_steps == 0:
                last.update(run.evaluate())
            run.logger.log(run.step, last)
            if run.should_checkpoint():
                run.save_checkpoint()
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
    results, pool_metrics = run.scorer.score(samples.texts, samples.rows, samples.lengths)
    run.reward_rounds.append((len(samples), pool_metrics))
    samples.rewards = [r.score for r in results]
    samples.correct = [bool(r.correct) for r in results]
    samples.answers = [r.extracted for r in results]
    if run.overlong is not None:
        samples.rewards = run.overlong(samples.rewards, samples.lengths)


def filter_groups(run: Run, samples: StepSamples) -> tuple[StepSamples, StepSamples]:
    """DAPO dynamic sampling: keep groups that carry signal, topping up with fresh prompts if configured.

    Returns everything generated this step (all rounds) and the samples to train on.
    """
    if run.group_filter is None:
        return samples, samples

    def more(gen_round: int) -> StepSamples:
        extra = run.rollout_step(run.sampler.next_indices(), gen_round=gen_round)
        reward(run, extra)
        return extra

    return run.group_filter(samples, more, run.learners.world_size)


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
    generated: StepSamples,
    trained: StepSamples,
    update_metrics: dict[str, float],
    sync_metrics: dict[str, float],
    timer: dict[str, float],
    step_seconds: float,
) -> dict[str, Any]:
    """What one step logs: what the policy generated (reward, accuracy, lengths; before any group filter),
    what the filter kept, the reward pool over all rounds, learner and sync metrics, time."""
    metrics = sample_metrics(generated, trained, run.reward_rounds, step_seconds)
    metrics.update({f"time/{k}_s": v for k, v in timer.items()})
    metrics.update(run.algorithm.metrics)
    metrics.update(update_metrics)
    metrics.update(sync_metrics)
    return metrics
