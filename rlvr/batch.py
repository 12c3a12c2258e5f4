"""One RL step's samples, flat over (prompt, sample), and how they are cut into learner work.

Sizes are named by unit: ``B`` samples, ``T`` response tokens (padded), ``L`` prompt+response tokens.
Every sample of a prompt shares a ``group_id``; shards and mini-batches always hold whole groups.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class StepSamples:
    """Everything the loop knows about the samples of one step (plain Python; tensors are built late)."""

    group_ids: list[int]
    rows: list[dict[str, Any]]
    prompt_ids: list[list[int]]
    response_ids: list[list[int]]
    rollout_logprobs: list[list[float]]
    texts: list[str]
    truncated: list[bool]
    rewards: list[float] = field(default_factory=list)
    correct: list[bool] = field(default_factory=list)
    answers: list[str | None] = field(default_factory=list)
    advantages: list[list[float]] = field(default_factory=list)
    old_logprobs: list[list[float]] = field(default_factory=list)
    old_entropy: list[list[float]] = field(default_factory=list)
    ref_logprobs: list[list[float]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.group_ids)

    @property
    def lengths(self) -> list[int]:
        return [len(r) for r in self.response_ids]

    def select(self, keep: list[int]) -> StepSamples:
        """The samples at indices `keep`, every per-sample field sliced alike."""
        out = {}
        for name, value in self.__dict__.items():
            out[name] = [value[i] for i in keep] if len(value) == len(self) else list(value)
        return StepSamples(**out)

    def concat(self, other: StepSamples) -> StepSamples:
        """These samples followed by `other`'s (e.g. a dynamic-sampling top-up round)."""
        return StepSamples(
            **{name: list(v) + list(getattr(other, name)) for name, v in self.__dict__.items()}
        )


def group_slices(group_ids: list[int]) -> list[list[int]]:
    """Indices of each group in first-seen order (samples of a group need not be contiguous)."""
    order: dict[int, list[int]] = {}
    for i, g in enumerate(group_ids):
        order.setdefault(g, []).append(i)
    return list(order.values())


def split_groups(group_ids: list[int], parts: int) -> list[list[int]]:
    """Split sample indices into `parts` lists of whole groups, as equal in group count as possible."""
    groups = group_slices(group_ids)
    if len(groups) % parts:
        raise ValueError(f"{len(groups)} groups cannot be split evenly into {parts} parts")
    per = len(groups) // parts
    return [[i for g in groups[p * per : (p + 1) * per] for i in g] for p in range(parts)]


def minibatch_counts(samples: StepSamples, mini: list[int]) -> dict[str, int]:
    """Global counts of one mini-batch (all ranks, all micro-batches) that the loss normalisers divide by.

    ``global_tokens``: response tokens (token_mean, DRPO's KL share); ``global_sequences``: non-empty
    responses (seq modes, Dr. GRPO); ``global_questions``: prompt groups (DRPO); ``global_correct_tokens``:
    tokens of correct responses (ERC's positive-NLL term). Each is at least 1.
    """
    lengths = [len(samples.response_ids[i]) for i in mini]
    correct = [bool(samples.correct[i]) for i in mini] if samples.correct else [False] * len(mini)
    return {
        "global_tokens": max(sum(lengths), 1),
        "global_sequences": max(sum(1 for n in lengths if n), 1),
        "global_questions": max(len({samples.group_ids[i] for i in mini}), 1),
        "global_correct_tokens": max(sum(n for n, c in zip(lengths, correct) if c), 1),
    }


def pack_micro_batches(
    token_counts: list[int], budget: int, group_ids: list[int] | None = None, *, longest_first: bool = False
) -> list[list[int]]:
    """Greedy packing into micro-batches of at most `budget` padded tokens (the one packer of the project).

    The cost of a micro-batch is ``len(batch) * max(tokens)`` (what padding makes it). With `group_ids`, a
    prompt's samples always share a micro-batch (whole-group objectives such as DRPO need that), so one
    over-budget group, like one over-long sample, gets a micro-batch of its own. Order is preserved, unless
    `longest_first`: then units (samples, or groups by their longest sample) are taken longest first, so
    similar lengths share a micro-batch and there are fewer micro-batches and less padding.
    """
    if budget < 1:
        raise ValueError(f"micro_batch_tokens must be >= 1, got {budget}")
    if group_ids is not None:
        units = group_slices(group_ids)
    else:
        units = [[i] for i in range(len(token_counts))]
    if longest_first:  # stable: equal lengths keep their order
        units.sort(key=lambda unit: -max(token_counts[i] for i in unit))
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for unit in units:
        unit_longest = max(token_counts[i] for i in unit)
        new_longest = max(longest, unit_longest)
        if current and new_longest * (len(current) + len(unit)) > budget:
            batches.append(current)
            current, new_longest = [], unit_longest
        current.extend(unit)
        longest = new_longest
    if current:
        batches.append(current)
    return batches


def plan_micro_batches(
    per_rank_tokens: list[list[int]], budget: int, per_rank_groups: list[list[int]] | None = None
) -> list[list[list[int]]]:
    """Micro-batches per rank with the SAME count on every rank (collectives must line up), packed longest
    first (fewer micro-batches, less padding; the loss does not depend on the layout).

    Ranks with fewer micro-batches split their largest ones (between groups, when groups are given) until
    the counts match; where nothing can be split, they get empty micro-batches, which the learner runs as a
    zero-weight dummy pass.
    """
    groups = per_rank_groups or [None] * len(per_rank_tokens)
    plans = [
        pack_micro_batches(tokens, budget, g, longest_first=True)
        for tokens, g in zip(per_rank_tokens, groups)
    ]
    target = max(len(p) for p in plans) if plans else 0
    for plan, gids in zip(plans, groups):
        while len(plan) < target:
            halves = _split_largest(plan, gids)
            if halves is None:
                plan.append([])
    return plans


def _split_largest(plan: list[list[int]], gids: list[int] | None) -> bool | None:
    """Split the largest micro-batch of `plan` in two, in place, at a group boundary; None if impossible."""
    for j in sorted(range(len(plan)), key=lambda k: -len(plan[k])):
        batch = plan[j]
        units = (
            group_slices([gids[i] for i in batch]) if gids is not None else [[k] for k in range(len(batch))]
        )
        if len(units) < 2:
            continue
        cut = units[len(units) // 2][0]
        plan[j : j + 1] = [batch[:cut], batch[cut:]]
        return True
    return None
