"""Group-preserving splits and equal-count micro-batch plans."""

from __future__ import annotations

import pytest

from rlvr.batch import StepSamples, group_slices, pack_micro_batches, plan_micro_batches, split_groups


def test_group_slices_and_split():
    gids = [0, 0, 1, 1, 2, 2, 3, 3]
    assert group_slices(gids) == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert split_groups(gids, 2) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    with pytest.raises(ValueError):
        split_groups(gids, 3)


def test_pack_respects_padded_budget():
    batches = pack_micro_batches([10, 10, 30, 5, 5], budget=40)
    assert batches == [[0, 1], [2], [3, 4]]
    for b in batches:
        assert len(b) * max([10, 10, 30, 5, 5][i] for i in b) <= 40
    assert pack_micro_batches([100], budget=40) == [[0]]  # over-long sample alone


def test_plan_equalises_counts_across_ranks():
    plans = plan_micro_batches([[10] * 8, [10] * 2], budget=40)
    assert len(plans[0]) == len(plans[1]) == 2
    assert sorted(i for b in plans[1] for i in b) == [0, 1]
    plans = plan_micro_batches([[10] * 8, [10]], budget=20)
    assert len(plans[0]) == len(plans[1]) == 4
    assert sum(1 for b in plans[1] if not b) == 3  # dummy micro-batches


def test_plan_packs_longest_first():
    # In order, alternating lengths pad every short sample to its long neighbour: 4 micro-batches of 2 x 30.
    lengths = [30, 10, 30, 10, 30, 10, 30, 10]
    assert len(pack_micro_batches(lengths, budget=60)) == 4
    # Longest first: the long ones pair up and the short ones share one micro-batch (3, and less padding).
    (plan,) = plan_micro_batches([lengths], budget=60)
    assert plan == [[0, 2], [4, 6], [1, 3, 5, 7]]
    # Whole groups go longest first by their longest sample, and stay whole.
    (plan,) = plan_micro_batches([[5, 5, 20, 20, 10, 10]], budget=40, per_rank_groups=[[0, 0, 1, 1, 2, 2]])
    assert plan == [[2, 3], [4, 5, 0, 1]]


def test_select_slices_every_field():
    s = StepSamples(
        group_ids=[0, 0, 1],
        rows=[{}, {}, {}],
        prompt_ids=[[1], [1], [2]],
        response_ids=[[5], [6, 7], []],
        rollout_logprobs=[[-1.0], [-1.0, -2.0], []],
        texts=["a", "b", "c"],
        truncated=[False, True, False],
        rewards=[1.0, 0.0, 0.5],
    )
    t = s.select([1, 2])
    assert t.response_ids == [[6, 7], []] and t.rewards == [0.0, 0.5] and t.correct == []
    assert s.lengths == [1, 2, 0]


def test_groups_stay_in_one_micro_batch():
    gids = [0, 0, 0, 1, 1, 1, 2, 2, 2]
    batches = pack_micro_batches([10] * 9, budget=40, group_ids=gids)
    assert batches == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    for batch in batches:
        assert len({gids[i] for i in batch}) == 1
    plans = plan_micro_batches([[10] * 4, [10] * 4], budget=100, per_rank_groups=[[0, 0, 1, 1], [2, 2, 2, 2]])
    assert len(plans[0]) == len(plans[1]) == 1
    plans = plan_micro_batches([[10] * 4, [10] * 2], budget=20, per_rank_groups=[[0, 0, 1, 1], [2, 2]])
    assert plans[0] == [[0, 1], [2, 3]] and plans[1] == [[0, 1], []]  # a group is never split: dummy pass


def test_usable_groups_after_dynamic_sampling():
    from rlvr.stages import usable_groups

    assert usable_groups(10, updates=2, ranks=2) == 8
    assert usable_groups(3, updates=2, ranks=2) == 2  # too few for every update: still whole groups per rank
    assert usable_groups(1, updates=2, ranks=2) == 0
