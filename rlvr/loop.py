"""The RL loop: generate → reward → filter → old logprobs → advantage → update → sync → log, step after step.

`train(recipe)` is the control flow itself: each phase below calls the part that does the work (the rollout
group, the reward scorer, the learner group, the weight transport) directly and is timed by name. The parts
are built once by `rlvr.parts.build_parts`; what a phase sends to the learners is planned by `rlvr.plan`.

One step, in order:
1. generate: `samples_per_prompt` completions for the next `prompts_per_step` prompts (or take the batch the
   one-step-off prefetch generated during the previous update);
2. reward: score every completion in the sandboxed verifier pool;
3. filter: DAPO dynamic sampling keeps groups that carry signal and generates top-up rounds until the step is
   full (a no-op without it);
4. old logprobs: the learners recompute behaviour logprobs (and entropy, reference logprobs when a method needs
   them) on the trained tokens; a step that is exactly on-policy (one synchronous update, nothing reads them
   before it) skips this forward pass: the update's own forward, detached, gives them;
5. advantage: per-token advantages from the recipe's estimator (`rlvr.algo`, pure torch);
6. update: `updates_per_step` optimizer updates over mini-batches of whole groups on every learner rank;
7. sync: learner weights to every rollout worker, verified by a logprob probe (a mismatch stops the run).
Then metrics (the first step's record also carries `time/startup_s`, process start to the first step),
evaluation and checkpoint by their cadences. SIGTERM finishes the step, checkpoints and returns.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from rlvr.batch import StepSamples
from rlvr.config import Recipe
from rlvr.lifecycle import close_quietly, process_age_s, stop_on_sigterm
from rlvr.parts import RunParts, build_parts
from rlvr.plan import (
    gather_scores,
    gather_update_logprobs,
    mean_over_ranks,
    score_work,
    single_update,
    update_work,
)
from rlvr.rollouts import Prefetch, generate_samples
from rlvr.run_state import load_run_checkpoint, save_run_checkpoint
from rlvr.step_metrics import sample_metrics

log = logging.getLogger("rlvr.loop")

RewardRounds = list[tuple[int, dict[str, float]]]  # (samples scored, the reward pool's metrics) per round


def train(
    recipe: Recipe,
    *,
    resume: str | None = None,
    recipe_dir: str | None = None,
    checkpoints: Any = None,
    transport: Any = None,
    build: Callable[..., RunParts] = build_parts,
) -> dict[str, Any]:
    """Run (or continue) a training run to `recipe.train.steps`; return the last step's metrics.

    `checkpoints` (a CheckpointManager) and `transport` (a WeightTransport) replace the recipe's defaults, for
    tests that inject faults through them; `build` replaces the whole start-up (unit tests pass fake parts).
    """
    steps = recipe.train.steps
    last: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        stop = stack.enter_context(stop_on_sigterm())
        parts = build(
            recipe, stack, resume=resume, recipe_dir=recipe_dir, checkpoints=checkpoints, transport=transport
        )
        stop.install()  # ray.init installs its own SIGTERM handler (exit 15): take it back
        prefetch = Prefetch()
        close_quietly(stack, prefetch.close)
        step = saved_at = load_checkpoint(parts, prefetch) if parts.resume_from is not None else 0
        sync(parts)  # proves rollout == learner before the first step (catches a bad model load or resume)
        if step == 0 and recipe.eval.every_steps and recipe.eval.at_start:
            parts.logger.log(0, evaluate(parts))
        startup_s = process_age_s()  # process start to the first step (resume and start-of-run eval included)
        while step < steps and not stop.requested:
            t0 = time.perf_counter()
            timer: dict[str, float] = {}
            rounds: RewardRounds = []
            samples = timed(timer, "generate", generate, parts, prefetch, step)
            timed(timer, "reward", reward, parts, samples, rounds)
            generated, samples = timed(timer, "filter", filter_groups, parts, samples, step, rounds)
            if recipe.train.async_mode == "one_step_off" and step + 1 < steps:
                # The next batch generates with the pre-update weights while the learners work; the weight
                # push below queues behind it in the rollout actors, so it is exactly one version behind.
                prefetch.start(generate_batch, parts, parts.sampler.next_indices(), step + 1, 0)
            colocated = recipe.resources.placement == "colocated"
            if colocated:
                parts.rollout.sleep()  # free the shared device for the learners (a no-op on CPU)
            exact = on_policy(parts, samples)  # then the update's own forward gives the old logprobs
            timed(timer, "logprobs", old_logprobs, parts, samples, exact)
            timed(timer, "advantage", advantages, parts, samples)
            update_metrics = timed(timer, "update", update, parts, samples, step, exact)
            if colocated:
                parts.rollout.wake_up()
            sync_metrics = timed(timer, "sync", sync, parts)
            step += 1
            last = sample_metrics(generated, samples, rounds, time.perf_counter() - t0)
            last.update({f"time/{k}_s": v for k, v in timer.items()})
            last.update(parts.stages.metrics)
            last.update(update_metrics)
            last.update(sync_metrics)
            if startup_s is not None:
                last["time/startup_s"], startup_s = startup_s, None
            if recipe.eval.every_steps and step % recipe.eval.every_steps == 0:
                last.update(evaluate(parts))
            parts.logger.log(step, last)
            if recipe.checkpoint.every_steps and step % recipe.checkpoint.every_steps == 0:
                saved_at = save_checkpoint(parts, step, prefetch)
        if step > 0 and saved_at != step:
            save_checkpoint(parts, step, prefetch)  # the last step, or where SIGTERM stopped the run
    return last


def timed(timer: dict[str, float], name: str, fn: Callable[..., Any], *args: Any) -> Any:
    t0 = time.perf_counter()
    out = fn(*args)
    timer[name] = time.perf_counter() - t0
    return out


# ---- the phases ---------------------------------------------------------------------------------------------


def generate(parts: RunParts, prefetch: Prefetch, step: int) -> StepSamples:
    """This step's samples: the prefetched batch under one-step-off async, else generated now."""
    samples = prefetch.take()
    return samples if samples is not None else generate_batch(parts, parts.sampler.next_indices(), step)


def generate_batch(
    parts: RunParts, indices: list[int], step: int, gen_round: int = 0, submitted: Any = None
) -> StepSamples:
    """The rollout group samples `samples_per_prompt` completions for the training rows `indices`."""
    return generate_samples(
        parts.rollout,
        parts.recipe.rollout,
        seed=parts.recipe.seed,
        rows=parts.train_rows,
        prompt_ids=parts.train_prompt_ids,
        indices=indices,
        step=step,
        gen_round=gen_round,
        submitted=submitted,
    )


def reward(parts: RunParts, samples: StepSamples, rounds: RewardRounds) -> None:
    """The scorer grades every completion in its sandboxed pool (raises if too many items error)."""
    results, pool_metrics = parts.scorer.score(samples.texts, samples.rows, samples.lengths)
    rounds.append((len(samples), pool_metrics))
    samples.rewards = [r.score for r in results]
    samples.correct = [bool(r.correct) for r in results]
    samples.answers = [r.extracted for r in results]
    if parts.stages.overlong is not None:
        samples.rewards = parts.stages.overlong(samples.rewards, samples.lengths)


def filter_groups(
    parts: RunParts, samples: StepSamples, step: int, rounds: RewardRounds
) -> tuple[StepSamples, StepSamples]:
    """DAPO dynamic sampling: keep groups that carry signal; generate and reward top-up rounds of fresh prompts
    until the step is full or `max_gen_batches` is spent. Returns everything generated and what to train on."""
    stages = parts.stages
    if not stages.dynamic_sampling:
        return samples, samples
    generated = samples
    kept = samples.select(stages.keep(samples))
    gen_round = 1
    while stages.wants_more(kept, gen_round):
        extra = generate_batch(parts, parts.sampler.next_indices(), step, gen_round)
        reward(parts, extra, rounds)
        generated = generated.concat(extra)
        kept = kept.concat(extra.select(stages.keep(extra)))
        gen_round += 1
    return generated, stages.trim(kept, gen_round, parts.learners.world_size)


def on_policy(parts: RunParts, samples: StepSamples) -> bool:
    """Whether this step is one synchronous update on what the current weights sampled: then the update's own
    forward pass gives the old logprobs and the scoring pass below skips the policy."""
    updates = parts.recipe.learner.updates_per_step
    return parts.stages.update_gives_old_logprobs and single_update(
        samples, parts.learners.world_size, updates
    )


def old_logprobs(parts: RunParts, samples: StepSamples, exact: bool) -> None:
    """The learners recompute behaviour logprobs (and entropy, reference logprobs when a method needs them);
    on an `exact` (on-policy) step, only the reference logprobs (the update computes the old logprobs)."""
    stages = parts.stages
    policy = not exact
    if not policy and not stages.needs_reference:
        return
    world = parts.learners.world_size
    shards, work = score_work(samples, world, parts.recipe.learner.micro_batch_tokens)
    outs = parts.learners.score(
        work, entropy=stages.needs_old_entropy, reference=stages.needs_reference, policy=policy
    )
    old_lp, samples.old_entropy, samples.ref_logprobs = gather_scores(len(samples), shards, work, outs)
    if policy:
        samples.old_logprobs = old_lp


def advantages(parts: RunParts, samples: StepSamples) -> None:
    """Per-token advantages from the configured estimator (pure torch, `rlvr.algo`)."""
    samples.advantages = parts.stages.advantages(samples)


def update(parts: RunParts, samples: StepSamples, step: int, exact: bool) -> dict[str, float]:
    """`updates_per_step` optimizer updates over mini-batches of whole groups, on every learner rank; an
    `exact` (on-policy) step's one update also gives the old logprobs."""
    r = parts.recipe
    work = update_work(
        samples,
        parts.learners.world_size,
        r.learner.updates_per_step,
        r.learner.micro_batch_tokens,
        r.rollout.samples_per_prompt,
        whole_groups=parts.stages.is_objective,  # a whole objective (DRPO) sees a prompt's samples in one call
        on_policy=exact,
    )
    results = parts.learners.update(work, parts.stages.loss_spec, step)
    if exact:  # the forward's detached logprobs: the step's old logprobs (for the mismatch metrics)
        samples.old_logprobs = gather_update_logprobs(samples, work, results)
    return mean_over_ranks([res.metrics for res in results])


def sync(parts: RunParts) -> dict[str, float]:
    """Push the learners' weights to every rollout worker, then verify them with a logprob probe: every worker
    scores fixed probe tokens and must agree with the learner (a mismatch raises WeightSyncError)."""
    from rlvr.orchestrate.weight_sync import sync_weights

    cfg = parts.recipe.rollout.sync  # cfg.timeout_s bounds each phase; the rollout group applies it too
    probe: dict[str, Any] = {}
    if cfg.verify:
        # Fixed probe: the first training prompts, their last 4 tokens scored as a 'response'.
        rows = parts.train_prompt_ids[: max(cfg.probe_sequences, 1)]
        probe["probe_prompt_ids"] = [p[:-4] or p for p in rows]
        probe["probe_response_ids"] = [p[-4:] for p in rows]
        probe["learner_logprobs"] = parts.learners.probe(
            probe["probe_prompt_ids"], probe["probe_response_ids"], timeout=cfg.timeout_s
        )
    stats = sync_weights(parts.rollout, parts.transport, parts.learners, cfg, dtype=parts.dtype, **probe)
    metrics = {"sync/seconds": stats.seconds, "sync/bytes": float(stats.num_bytes)}
    if stats.verify_max_delta is not None:
        metrics["sync/max_abs_logprob_delta"] = stats.verify_max_delta
    return metrics


# ---- evaluation and checkpoints -------------------------------------------------------------------------------


def evaluate(parts: RunParts) -> dict[str, float]:
    """Held-out accuracy (and pass@k when sampling several) with the current rollout weights."""
    from rlvr.eval.runner import evaluate_prompts
    from rlvr.progress import progress

    if not parts.eval_rows:
        return {}
    e = parts.recipe.eval
    report = evaluate_prompts(
        parts.rollout,
        parts.scorer,
        parts.eval_rows,
        parts.eval_prompt_ids,
        samples_per_prompt=e.samples_per_prompt,
        temperature=e.temperature,
        top_p=e.top_p,
        max_tokens=parts.recipe.rollout.max_response_tokens,
        seed=parts.recipe.seed,
        log=progress,
    )
    return {f"eval/{k}": v for k, v in report["summary"].items() if isinstance(v, int | float)}


def save_checkpoint(parts: RunParts, step: int, prefetch: Prefetch) -> int:
    """Write the checkpoint of `step` (learners, data cursor, RNG streams, the batch in flight); return `step`."""
    save_run_checkpoint(
        parts.checkpoints,
        step=step,
        recipe=parts.recipe,
        learners=parts.learners,
        sampler=parts.sampler,
        pending_samples=prefetch.state,
    )
    return step


def load_checkpoint(parts: RunParts, prefetch: Prefetch) -> int:
    """Restore the run from `parts.resume_from`; drop metric records of steps after it; return its step."""
    step, pending = load_run_checkpoint(parts.resume_from, learners=parts.learners, sampler=parts.sampler)
    prefetch.restore(pending)
    dropped = parts.logger.truncate_after(step)
    if dropped:
        log.warning("resuming at step %d: dropped %d metric records of lost steps", step, dropped)
    return step
