"""Turning prompts into one step's samples: a rollout call for given training rows, and the one-step-off prefetch.

The sampling seed of a call is a function of (recipe seed, step, generation round), so a resumed run, a top-up
round of dynamic sampling and a prefetched batch all draw exactly what an uninterrupted run draws.
"""

from __future__ import annotations

import dataclasses
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from rlvr.batch import StepSamples
from rlvr.config.rollout import RolloutConfig
from rlvr.sampler import rollout_seed


def generate_samples(
    rollout: Any,
    cfg: RolloutConfig,
    *,
    seed: int,
    rows: list[dict[str, Any]],
    prompt_ids: list[list[int]],
    indices: list[int],
    step: int,
    gen_round: int = 0,
    submitted: threading.Event | None = None,
) -> StepSamples:
    """`cfg.samples_per_prompt` completions for each training row in `indices`, flat over (prompt, sample).

    Args:
        rollout: The rollout group (anything with the `RolloutGroup.generate` signature).
        cfg: The recipe's `rollout` section (samples per prompt, sampling knobs, token budget).
        seed: The recipe's seed.
        rows: Every training row; `prompt_ids`: their tokenized prompts.
        indices: The rows of this call.
        step: The step the samples are for (a prefetch generates for the next one).
        gen_round: 0 for a step's first batch, k for the k-th dynamic-sampling top-up.
        submitted: Set once every rollout worker has the call queued (see `Prefetch`).
    """
    n = cfg.samples_per_prompt
    groups = rollout.generate(
        [prompt_ids[i] for i in indices],
        n=n,
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        top_k=cfg.top_k,
        max_tokens=cfg.max_response_tokens,
        seed=rollout_seed(seed, step, gen_round),
        submitted=submitted,
    )
    samples = StepSamples([], [], [], [], [], [], [])
    base = gen_round * len(indices)  # group ids stay unique across the rounds of one step
    for q, (row_index, completions) in enumerate(zip(indices, groups)):
        for c in completions:
            samples.group_ids.append(base + q)
            samples.rows.append(rows[row_index])
            samples.prompt_ids.append(prompt_ids[row_index])
            samples.response_ids.append(list(c.token_ids))
            samples.rollout_logprobs.append(list(c.logprobs))
            samples.texts.append(c.text)
            samples.truncated.append(bool(c.truncated))
    return samples


class Prefetch:
    """One-step-off async: the next step's batch generates in a thread while the learners update.

    Rollout actors run calls in order, and `start` returns only once the generation is queued in every
    worker, so the weight push after this step's update runs after it: the batch is exactly one policy version
    behind (never a mix of versions), and the learners recompute its old logprobs.
    """

    def __init__(self) -> None:
        self._executor: ThreadPoolExecutor | None = None
        self._pending: Future | None = None

    def start(self, fn: Any, *args: Any) -> None:
        """Run ``fn(*args, submitted=event)`` in the background; return once it set the event (or ended)."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rlvr-prefetch")
        submitted = threading.Event()
        self._pending = self._executor.submit(fn, *args, submitted=submitted)
        while not submitted.wait(0.05) and not self._pending.done():
            pass

    def take(self) -> StepSamples | None:
        """The prefetched batch (waiting for it), or None when nothing is in flight.

        No deadline of its own: every rollout call inside has one, and a retry on a restarted worker may take
        longer than one call's deadline.
        """
        if self._pending is None:
            return None
        pending, self._pending = self._pending, None
        return pending.result()

    def state(self) -> dict[str, Any] | None:
        """The batch in flight, finished and as plain data (saved in checkpoints); None when none is."""
        if self._pending is None:
            return None
        return dataclasses.asdict(self._pending.result())

    def restore(self, state: dict[str, Any] | None) -> None:
        if state is not None:
            done: Future = Future()
            done.set_result(StepSamples(**state))
            self._pending = done

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
