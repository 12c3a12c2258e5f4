"""Learner helpers with no DeepSpeed: packing, lr schedules, chunked logprobs/entropy."""

from __future__ import annotations

import math

import pytest
import torch

from rlvr.batch import pack_micro_batches
from rlvr.learner.logprobs import compute_token_logprobs_and_entropy
from rlvr.learner.packing import collate, make_micro_batches
from rlvr.learner.schedule import lr_multiplier
from rlvr.learner.settings import LearnerSettings


def test_longest_first_packing_covers_all_and_respects_budget():
    lengths = [5, 30, 7, 12, 12, 3, 40, 8]
    groups = pack_micro_batches(lengths, 48, longest_first=True)
    assert groups == [[6], [1], [3, 4, 7, 2], [0, 5]]  # 40 | 30 (30+12 > 48) | 12,12,8,7 (4 x 12) | 5,3
    for g in groups:
        assert len(g) == 1 or max(lengths[i] for i in g) * len(g) <= 48
    assert pack_micro_batches([100, 2], 10, longest_first=True) == [[0], [1]]
    assert pack_micro_batches([3, 3, 3], 9) == [[0, 1, 2]]
    with pytest.raises(ValueError, match="micro_batch_tokens must be >= 1"):
        pack_micro_batches([1], 0)


def test_collate_pads_right_and_keeps_scalars():
    samples = [
        {"input_ids": [5, 6, 7], "response_mask": [0, 1, 1], "adv": 0.5, "old": [0.0, -1.0, -2.0]},
        {"input_ids": [8], "response_mask": [1], "adv": -1.0, "old": [-0.5]},
    ]
    mb = collate(samples, pad_token_id=0)
    assert mb["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert mb["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert mb["old"].dtype == torch.float32 and mb["old"][0, 2] == -2.0
    assert mb["adv"].tolist() == [0.5, -1.0]
    with pytest.raises(ValueError, match="per-token field"):
        collate([{"input_ids": [1, 2], "response_mask": [1]}], 0)
    assert len(make_micro_batches(samples, 6, 0)) == 1
    assert len(make_micro_batches(samples, 5, 0)) == 2


def test_lr_schedules():
    kw = {"warmup_steps": 4, "total_steps": 14}
    assert [lr_multiplier("constant", s, **kw) for s in (0, 3, 4, 100)] == [0.2, 0.8, 1.0, 1.0]
    assert lr_multiplier("linear", 9, **kw) == pytest.approx(0.5)
    assert lr_multiplier("linear", 14, **kw, min_lr_ratio=0.1) == pytest.approx(0.1)
    assert lr_multiplier("cosine", 9, **kw) == pytest.approx(0.5)
    assert lr_multiplier("cosine", 6, **kw) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.2)))
    assert lr_multiplier("cosine", 50, **kw) == pytest.approx(0.0)
    with pytest.raises(KeyError, match="registered"):
        lr_multiplier("step", 0, **kw)
    with pytest.raises(ValueError):
        LearnerSettings(zero_stage=4)


def test_chunked_logprobs_and_entropy_match_direct():
    torch.manual_seed(0)
    logits = torch.randn(37, 11, dtype=torch.float64) * 3
    targets = torch.randint(0, 11, (37,))
    for temp in (1.0, 0.7):
        lp, ent = compute_token_logprobs_and_entropy(
            logits.to(torch.bfloat16), targets, temperature=temp, chunk_tokens=5
        )
        ref = torch.log_softmax(logits.to(torch.bfloat16).double() / temp, -1)
        assert lp.dtype == torch.float32
        assert torch.allclose(lp.double(), ref.gather(-1, targets[:, None]).squeeze(-1), atol=1e-5)
        assert torch.allclose(ent.double(), -(ref.exp() * ref).sum(-1), atol=1e-5)
    uniform_lp, uniform_ent = compute_token_logprobs_and_entropy(torch.zeros(2, 8), torch.tensor([0, 1]))
    assert torch.allclose(uniform_ent, torch.full((2,), math.log(8)))
    assert torch.allclose(uniform_lp, torch.full((2,), -math.log(8)))
