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


def pack_micro_batches(token_counts: list[int], budget: int) -> list[list[int]]:
    """Greedy, order-preserving packing of samples into micro-batches of at most `budget` padded tokens.

    The cost of a micro-batch is ``len(batch) * max(tokens)`` (what padding makes it), so one over-long
    sample still gets a micro-batch of its own.
    """
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i, n in enumerate(token_counts):
        new_longest = max(longest, n)
        if current and new_longest * (len(current) + 1) > budget:
            batches.append(current)
            current, new_longest = [], n
        current.append(i)
        longest = new_longest
    if current:
        batches.append(current)
    return batches


def plan_micro_batches(per_rank_tokens: list[list[int]], budget: int) -> list[list[list[int]]]:
    """Micro-batches per rank with the SAME count on every rank (collectives must line up).

    Ranks with fewer micro-batches split their largest ones until the counts match; a rank with fewer
    samples than micro-batches gets empty ones, which the learner runs as a zero-weight dummy pass.
    """
    plans = [pack_micro_batches(tokens, budget) for tokens in per_rank_tokens]
    target = max(len(p) for p in plans) if plans else 0
    for plan in plans:
        while len(plan) < target:
            largest = max(range(len(plan)), key=lambda j: len(plan[j])) if plan else None
            if largest is None or len(plan[largest]) < 2:
                plan.append([])
                continue
            batch = plan.pop(largest)
            half = len(batch) // 2
            plan[largest:largest] = [batch[:half], batch[half:]]
    return plans
