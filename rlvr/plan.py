"""Planning learner work: one step's samples cut into per-rank shards of whole groups and micro-batches.

Two kinds of work go to the learner ranks: scoring (old/reference logprobs, entropy) over the whole step, and
`updates_per_step` optimizer updates, each over a mini-batch of whole groups split across every rank. Every
rank gets the same number of micro-batches (collectives must line up), and every mini-batch carries its global
counts (tokens, sequences, groups) so that the loss does not depend on the layout. What travels to a rank is a
`rlvr.learner.work.LearnerBatch` (packed tensors plus offsets); scores come back packed the same way.
"""

from __future__ import annotations

from rlvr.batch import StepSamples, group_slices, minibatch_counts, plan_micro_batches, split_groups
from rlvr.learner.work import LearnerBatch, ScoredTokens, unpack


def rank_shards(samples: StepSamples, world: int, indices: list[int] | None = None) -> list[list[int]]:
    """Sample indices (all, or `indices`) split into `world` shards of whole groups."""
    idx = list(range(len(samples))) if indices is None else indices
    parts = split_groups([samples.group_ids[i] for i in idx], world)
    return [[idx[i] for i in part] for part in parts]


def micro_plan(
    samples: StepSamples, shards: list[list[int]], budget: int, whole_groups: bool = False
) -> list[list[list[int]]]:
    """Per shard, micro-batches (positions within the shard) of at most `budget` padded tokens.

    With `whole_groups` (a whole objective such as DRPO, which needs a prompt's samples in one call) a group
    is never split; otherwise single samples are packed, so one micro-batch never has to hold a whole group of
    long responses (the logits of 64 x 1536 tokens of a 152k vocabulary alone are tens of GB).
    """
    tokens = [[len(samples.prompt_ids[i]) + len(samples.response_ids[i]) for i in shard] for shard in shards]
    groups = [[samples.group_ids[i] for i in shard] for shard in shards] if whole_groups else None
    return plan_micro_batches(tokens, budget, groups)


def score_work(samples: StepSamples, world: int, budget: int) -> tuple[list[list[int]], list[LearnerBatch]]:
    """The shards and, per rank, the batch it scores: prompt and response tokens and its micro-batches."""
    shards = rank_shards(samples, world)
    plans = micro_plan(samples, shards, budget)
    work = [
        LearnerBatch.build(
            [samples.prompt_ids[i] for i in shard],
            [samples.response_ids[i] for i in shard],
            micro_batches=plan,
        )
        for shard, plan in zip(shards, plans)
    ]
    return shards, work


def gather_scores(
    n: int, shards: list[list[int]], work: list[LearnerBatch], outs: list[ScoredTokens]
) -> tuple[list, list, list]:
    """Per-sample old logprobs, old entropy and reference logprobs (ragged lists, [] when not scored), back
    in step order from the ranks' packed results."""
    old_lp: list = [None] * n
    old_ent: list = [None] * n if outs and outs[0].old_entropy_R is not None else []
    ref_lp: list = [None] * n if outs and outs[0].ref_logprobs_R is not None else []
    for shard, batch, out in zip(shards, work, outs):
        for target, values in (
            (old_lp, out.old_logprobs_R),
            (old_ent, out.old_entropy_R),
            (ref_lp, out.ref_logprobs_R),
        ):
            if values is None:
                continue
            for i, row in zip(shard, unpack(values, batch.response_offsets_N1)):
                target[i] = row
    return old_lp, old_ent, ref_lp


def update_shards(samples: StepSamples, world: int, updates: int) -> list[list[list[int]]]:
    """Per optimizer update, per rank, the step's sample indices: `updates` mini-batches of whole groups, each
    split across every rank. With too few groups (dynamic sampling) there are fewer, smaller updates."""
    groups = group_slices(samples.group_ids)
    per_update = max(len(groups) // updates // world * world, world)
    return [
        rank_shards(samples, world, [i for g in groups[u : u + per_update] for i in g])
        for u in range(0, len(groups), per_update)
    ]


def single_update(samples: StepSamples, world: int, updates: int) -> bool:
    """Whether the step's samples make exactly one optimizer update (`update_shards`)."""
    return len(update_shards(samples, world, updates)) == 1


def update_work(
    samples: StepSamples,
    world: int,
    updates: int,
    budget: int,
    group_size: int,
    *,
    whole_groups: bool = False,
    on_policy: bool = False,
) -> list[list[LearnerBatch]]:
    """Per rank, one payload per optimizer update (`update_shards`), with its micro-batches and global counts.

    `whole_groups`: keep each group in one micro-batch too (see `micro_plan`). `on_policy`: the step's one
    update takes the old logprobs from its own forward (`samples.old_logprobs` is not sent; `rlvr.learner.work`).
    """
    minis = update_shards(samples, world, updates)
    if on_policy and len(minis) != 1:
        raise ValueError(f"an on-policy update must be the only one of its step, not one of {len(minis)}")
    per_rank: list[list[LearnerBatch]] = [[] for _ in range(world)]
    for shards in minis:
        plans = micro_plan(samples, shards, budget, whole_groups)
        counts = minibatch_counts(samples, [i for shard in shards for i in shard])
        for rank, (shard, plan) in enumerate(zip(shards, plans)):
            per_rank[rank].append(shard_payload(samples, shard, plan, counts, group_size, on_policy))
    return per_rank


def shard_payload(
    samples: StepSamples,
    shard: list[int],
    plan: list[list[int]],
    counts: dict[str, int],
    group_size: int,
    on_policy: bool = False,
) -> LearnerBatch:
    """What one rank needs for one mini-batch: its samples' tokens, per-token and per-sample inputs, its
    micro-batches and the mini-batch's global counts."""

    def pick(values):
        return [values[i] for i in shard] if values else []

    per_token = {
        "old_logprobs": [] if on_policy else pick(samples.old_logprobs),
        "old_entropy": pick(samples.old_entropy),
        "ref_logprobs": pick(samples.ref_logprobs),
        "advantages": pick(samples.advantages),
    }
    return LearnerBatch.build(
        pick(samples.prompt_ids),
        pick(samples.response_ids),
        micro_batches=plan,
        per_token=per_token,
        group_ids=pick(samples.group_ids),
        rewards=pick(samples.rewards),
        correct=pick(samples.correct),
        counts=counts,
        group_size=group_size,
        on_policy=on_policy,
    )


def gather_update_logprobs(samples: StepSamples, work: list[list[LearnerBatch]], outs: list) -> list:
    """Per-sample old logprobs, in step order, from the ranks' `UpdateResult`s of an on-policy step."""
    (shards,) = update_shards(samples, len(work), 1)
    old_lp: list = [None] * len(samples)
    for shard, batches, out in zip(shards, work, outs):
        for i, row in zip(shard, unpack(out.old_logprobs_R, batches[0].response_offsets_N1)):
            old_lp[i] = row
    return old_lp


def mean_over_ranks(outs: list[dict[str, float]]) -> dict[str, float]:
    """Each metric averaged over the ranks that report it."""
    keys = set().union(*outs) if outs else set()
    return {k: sum(o[k] for o in outs if k in o) / sum(1 for o in outs if k in o) for k in keys}
