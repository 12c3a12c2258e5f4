"""The driver ↔ learner contract: packing, the one padder, and the packed results coming back exactly."""

from __future__ import annotations

import pytest
import torch

from rlvr.learner.work import LearnerBatch, offsets, unpack

PROMPTS = [[5, 6, 7], [8]]
RESPONSES = [[1, 2], [3, 4, 9]]


def test_rows_are_packed_with_offsets():
    b = LearnerBatch.build(
        PROMPTS,
        RESPONSES,
        micro_batches=[[0, 1]],
        per_token={"advantages": [[0.5, 0.5], [-1.0, -1.0, -1.0]]},
        group_ids=[3, 3],
        correct=[True, False],
    )
    assert b.prompt_ids_P.tolist() == [5, 6, 7, 8]
    assert b.prompt_offsets_N1.tolist() == [0, 3, 4]
    assert b.response_ids_R.tolist() == [1, 2, 3, 4, 9]
    assert b.response_offsets_N1.tolist() == [0, 2, 5]
    assert b.advantages_R.tolist() == [0.5, 0.5, -1.0, -1.0, -1.0]
    assert b.old_logprobs_R is None and b.rewards_N is None
    assert len(b) == 2 and b.response_lengths() == [2, 3]
    with pytest.raises(KeyError, match="unknown per-token field 'advantage'"):
        LearnerBatch.build(PROMPTS, RESPONSES, micro_batches=[], per_token={"advantage": [[1.0]]})


def test_the_micro_batch_is_right_padded_with_response_masks():
    b = LearnerBatch.build(
        PROMPTS, RESPONSES, micro_batches=[[1, 0]], per_token={"advantages": [[1, 2], [3, 4, 5]]}
    )
    mb = b.micro([1, 0], pad_id=0)
    assert mb.input_ids_BL.tolist() == [[8, 3, 4, 9, 0], [5, 6, 7, 1, 2]]
    assert mb.attention_BL.tolist() == [[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]]
    assert mb.score_mask_BL.tolist() == [[0, 1, 1, 1, 0], [0, 0, 0, 1, 1]]
    assert mb.prompt_lens_B.tolist() == [1, 3]
    assert mb.response_mask_BT.tolist() == [[1, 1, 1], [1, 1, 0]]
    assert b.padded("advantages", mb).tolist() == [[3, 4, 5], [1, 2, 0]]
    assert b.padded("old_logprobs", mb) is None
    assert not mb.dummy


def test_an_empty_micro_batch_is_a_dummy_pass_and_an_empty_shard_still_runs():
    b = LearnerBatch.build(PROMPTS, RESPONSES, micro_batches=[[0, 1], []])
    assert b.micro([], pad_id=0).dummy and b.micro([], pad_id=0).indices == [0]
    empty = LearnerBatch.build([], [], micro_batches=[[]])
    mb = empty.micro([], pad_id=7)
    assert mb.dummy and mb.input_ids_BL.tolist() == [[7, 7, 7]]


def test_scores_come_back_packed_and_exact():
    b = LearnerBatch.build(PROMPTS, RESPONSES, micro_batches=[[1], [0]])
    out = torch.zeros(len(b.response_ids_R))
    for idx in b.micro_batches:
        mb = b.micro(idx, pad_id=0)
        values = torch.arange(mb.width, dtype=torch.float32).unsqueeze(0) + 10 * (idx[0] + 1)
        b.place(out, values, mb)
    assert unpack(out, b.response_offsets_N1) == [[10.0, 11.0], [20.0, 21.0, 22.0]]
    third = torch.tensor([1 / 3], dtype=torch.float32)
    assert unpack(third, offsets([1]))[0][0] == float(third[0])  # float32 values survive exactly


def test_offsets_of_nothing():
    assert offsets([]).tolist() == [0]
