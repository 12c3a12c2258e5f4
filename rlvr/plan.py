"""Planning learner work: one step's samples cut into per-rank shards of whole groups and micro-batches.

Two kinds of work go to the learner ranks: scoring (old/reference logprobs, entropy) over the whole step, and
`updates_per_step` optimizer updates, each over a mini-batch of whole groups split across every rank. Every
rank gets the same number of micro-batches (collectives must line up), and every mini-batch carries its global
counts (tokens, sequences, groups) so that the loss does not depend on the layout.
"""

from __future__ import annotations

from typing import Any

from rlvr.batch import StepSamples, group_slices, minibatch_counts, plan_micro_batches, split_groups


def rank_shards(samples: StepSamples, world: int, indices: list[int] | None = None) -> list[list[int]]:
    """Sample indices (all, or `indices`) split into `world` shards of whole groups."""
    idx = list(range(len(samples))) if indices is None else indices
    parts = split_groups([samples.group_ids[i] for i in idx], world)
    return [[idx[i] for i in part] for part in parts]


def micro_plan(samples: StepSamples, shards: list[list[int]], budget: int) -> list[list[list[int]]]:
    """Per shard, micro-batches (positions within the shard) of at most `budget` padded tokens."""
    tokens = [[len(samples.prompt_ids[i]) + len(samples.response_ids[i]) for i in shard] for shard in shards]
    groups = [[samples.group_ids[i] for i in shard] for shard in shards]
    return plan_micro_batches(tokens, budget, groups)


def score_work(samples: StepSamples, world: int, budget: int) -> tuple[list[list[int]], list[dict[str, Any]]]:
    """The shards and, per rank, what it scores: prompt and response ids and its micro-batches."""
    shards = rank_shards(samples, world)
    plans = micro_plan(samples, shards, budget)
    payload = [
        {
            "prompt_ids": [samples.prompt_ids[i] for i in shard],
            "response_ids": [samples.response_ids[i] for i in shard],
            "micro_batches": plan,
        }
        for shard, plan in zip(shards, plans)
    ]
    return shards, payload


def gather_scores(
    n: int, shards: list[list[int]], outs: list[dict[str, Any]], *, entropy: bool, reference: bool
) -> tuple[list, list, list]:
    """Per-sample old logprobs, old entropy and reference logprobs, back in step order from the ranks."""
    old_lp: list = [None] * n
    old_ent: list = [None] * n if entropy else []
    ref_lp: list = [None] * n if reference else []
    for shard, out in zip(shards, outs):
        for k, i in enumerate(shard):
            old_lp[i] = out["old_logprobs"][k]
            if entropy:
                old_ent[i] = out["old_entropy"][k]
            if reference:
                ref_lp[i] = out["ref_logprobs"][k]
    return old_lp, old_ent, ref_lp


def update_work(
    samples: StepSamples, world: int, updates: int, budget: int, group_size: int
) -> list[list[dict[str, Any]]]:
    """Per rank, one payload per optimizer update: `updates` mini-batches of whole groups across all ranks.

    With too few groups (dynamic sampling) there are fewer, smaller updates; every rank still gets whole groups.
    """
    groups = group_slices(samples.group_ids)
    per_update = max(len(groups) // updates // world * world, world)
    per_rank: list[list[dict[str, Any]]] = [[] for _ in range(world)]
    for u in range(0, len(groups), per_update):
        mini = [i for g in groups[u : u + per_update] for i in g]
        shards = rank_shards(samples, world, mini)
        plans = micro_plan(samples, shards, budget)
        counts = minibatch_counts(samples, mini)
        for rank, (shard, plan) in enumerate(zip(shards, plans)):
            per_rank[rank].append(shard_payload(samples, shard, plan, counts, group_size))
    return per_rank


def shard_payload(
    samples: StepSamples, shard: list[int], plan: list[list[int]], counts: dict[str, int], group_size: int
) -> dict[str, Any]:
    """What one rank needs for one mini-batch: its samples' tokens and per-token inputs, plan and counts."""

    def pick(values):
        return [values[i] for i in shard] if values else []

    return {
        "prompt_ids": pick(samples.prompt_ids),
        "response_ids": pick(samples.response_ids),
        "old_logprobs": pick(samples.old_logprobs),
        "old_entropy": pick(samples.old_entropy),
        "ref_logprobs": pick(samples.ref_logprobs),
        "advantages": pick(samples.advantages),
        "group_ids": pick(samples.group_ids),
        "correct": pick(samples.correct),
        "rewards": pick(samples.rewards),
        "group_size": group_size,
        "micro_batches": plan,
        **counts,
    }


def mean_over_ranks(outs: list[dict[str, float]]) -> dict[str, float]:
    """Each metric averaged over the ranks that report it."""
    keys = set().union(*outs) if outs else set()
    return {k: sum(o[k] for o in outs if k in o) / sum(1 for o in outs if k in o) for k in keys}
