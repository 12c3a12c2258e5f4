"""Advantage estimators against hand-computed vectors, plus edge cases and properties.

Vector labels: T1 GRPO / Dr. GRPO / RLOO, T2 REINFORCE++-baseline, T10 LENS, T11 QAE, T12 W-REINFORCE, T15 the
near-zero-std amplification of GRPO.
"""

from __future__ import annotations

import pytest
import torch
from conftest import assert_close, t64
from hypothesis import given, settings
from hypothesis import strategies as st

from rlvr.algo import compute_advantages


def adv(name, rewards, correct=None, groups=None, mask=None, old=None, **kw):
    rewards = t64(rewards)
    b = rewards.shape[0]
    correct = torch.tensor(correct, dtype=torch.bool) if correct is not None else rewards > 0
    groups = torch.tensor(groups) if groups is not None else torch.zeros(b, dtype=torch.long)
    mask = t64(mask) if mask is not None else torch.ones(b, 1, dtype=torch.float64)
    old = t64(old) if old is not None else None
    return compute_advantages(name, rewards, correct, groups, mask, old, **kw)


T1 = [
    (
        [1, 0, 0, 0],
        [1.4999970, -0.4999990, -0.4999990, -0.4999990],
        [0.75, -0.25, -0.25, -0.25],
        [1, -1 / 3, -1 / 3, -1 / 3],
    ),
    (
        [1, 1, 0, 0],
        [0.8660239, 0.8660239, -0.8660239, -0.8660239],
        [0.5, 0.5, -0.5, -0.5],
        [2 / 3, 2 / 3, -2 / 3, -2 / 3],
    ),
    ([1, 1, 1, 1], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]),
    ([0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]),
    (
        [1, -1, -1, -1],
        [1.4999985, -0.4999995, -0.4999995, -0.4999995],
        [1.5, -0.5, -0.5, -0.5],
        [2, -2 / 3, -2 / 3, -2 / 3],
    ),
]


@pytest.mark.parametrize(("rewards", "grpo", "dr_grpo", "rloo"), T1)
def test_t1_outcome_advantages(rewards, grpo, dr_grpo, rloo):
    assert_close(adv("grpo", rewards)[:, 0], grpo)
    assert_close(adv("grpo", rewards, norm_by_std=False)[:, 0], dr_grpo)
    assert_close(adv("dr_grpo", rewards)[:, 0], dr_grpo)
    assert_close(adv("rloo", rewards)[:, 0], rloo)


def test_t1_trl_eps_and_singleton_quirk():
    assert_close(adv("grpo", [1, 0, 0, 0], eps=1e-4)[:, 0], [1.4997001, -0.4999, -0.4999, -0.4999])
    assert_close(adv("grpo", [1, 1, 0, 0], eps=1e-4)[:, 0], [0.8658754] * 2 + [-0.8658754] * 2)
    assert_close(adv("grpo", [0.7], singleton="raw")[:, 0], [0.6999993])
    assert_close(adv("grpo", [0.7])[:, 0], [0.0])
    assert_close(adv("rloo", [0.7], singleton="raw")[:, 0], [0.7])
    assert_close(adv("rloo", [0.7])[:, 0], [0.0])


def test_groups_any_order_and_mixed_sizes():
    # Two interleaved groups of different sizes, plus a singleton, ids not contiguous.
    rewards = [1, 5, 0, 5, 0, 0, 9]
    groups = [7, 3, 7, 3, 7, 7, 42]
    out = adv("grpo", rewards, groups=groups)[:, 0]
    assert_close(out[[0, 2, 4, 5]], [1.4999970, -0.4999990, -0.4999990, -0.4999990])
    assert_close(out[[1, 3]], [0, 0])
    assert_close(out[6], 0.0)


def test_broadcast_over_tokens_and_empty_rows():
    mask = [[1, 1, 0], [0, 0, 0], [1, 0, 0], [1, 1, 1]]
    out = adv("grpo", [1, 0, 0, 0], mask=mask)
    assert_close(out, t64(mask) * t64([1.4999970, -0.4999990, -0.4999990, -0.4999990]).unsqueeze(-1))


def test_t2_reinforce_pp_baseline_and_plain():
    mask = [[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]]
    expected = t64([1.4411534, -0.6405126, -0.6405126, -0.6405126]).unsqueeze(-1) * t64(mask)
    assert_close(adv("reinforce_pp_baseline", [1, 0, 0, 0], mask=mask), expected)
    assert_close(adv("reinforce_pp", [1, 0, 0, 0], mask=mask), expected)


def test_reinforce_pp_discount_and_token_rewards():
    mask = t64([[1, 1, 1, 0], [1, 1, 0, 0]])
    rewards, correct, groups = t64([1.0, 0.0]), torch.tensor([True, False]), torch.tensor([0, 0])
    tok = t64([[0.0, -0.1, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    # gamma=0.5: returns row0 = [0.5^2*1 + 0.5*(-0.1), 1*0.5 - 0.1, 1, 0]; row1 all 0; then whitened.
    out = compute_advantages("reinforce_pp", rewards, correct, groups, mask, gamma=0.5, token_rewards_BT=tok)
    ret = t64([[0.2, 0.4, 1.0, 0], [0, 0, 0, 0]])
    mean = (ret * mask).sum() / mask.sum()
    var = (((ret - mean) ** 2) * mask).sum() / (mask.sum() - 1)
    assert_close(out, (ret - mean) / torch.sqrt(var + 1e-8) * mask)


def test_t10_lens_mixed_and_negative_groups():
    # Token log-probs chosen so each row's mean equals the spec's mean old-logprob; lengths differ on purpose.
    mask = [[1, 1, 0], [1, 0, 0], [1, 1, 1], [1, 1, 0]] * 2
    means = [-0.5, -0.2, -1.0, -2.0, -0.3, -0.7, -1.2, -2.5]
    old = [[m * sum(r), 0.0, 0.0] for m, r in zip(means, mask)]  # row mean over valid tokens == m
    out = adv(
        "lens", [1, 0, 0, 0, 0, 0, 0, 0], groups=[0, 0, 0, 0, 1, 1, 1, 1], mask=mask, old=old, alpha=0.25
    )
    per_row = out.sum(-1) / t64(mask).sum(-1)
    assert_close(per_row[:4], [1.4940075, -0.6200335, -0.4650353, -0.4089388])
    assert_close(per_row[4:], [-0.0340949, -0.0031025, 0.012458, 0.0247394])


def test_lens_all_correct_zero_and_empty_response_guard():
    mask = [[1, 1], [1, 1], [0, 0], [1, 0]]
    old = [[-0.1, -0.2], [-0.3, -0.4], [0.0, 0.0], [-5.0, 0.0]]
    full = [[1, 1], [1, 1], [1, 0], [1, 0]]
    assert_close(adv("lens", [1, 1, 1, 1], mask=full, old=old), torch.zeros(4, 2))
    # Empty response: treated as wrong with pi=0 -> calibrated reward 0, finite everywhere.
    out = adv("lens", [1, 0, 0, 0], correct=[True, False, True, False], mask=mask, old=old)
    assert torch.isfinite(out).all()
    assert float(out[2].abs().sum()) == 0.0
    with pytest.raises(ValueError, match="old_logprobs"):
        adv("lens", [1, 0], mask=[[1], [1]])


@pytest.mark.parametrize(
    ("m", "code_c", "code_w", "paper_c", "paper_w"),
    [
        (0, None, 0.0, None, 0.0),
        (1, 2.828419, 0.0, 2.828419, 0.0),
        (2, 2.160242, 0.0, 2.160242, 0.0),
        (3, 1.932180, 0.0, 1.932180, 0.0),
        (4, 1.870825, 0.0, 1.870825, 0.0),
        (5, 0.386436, -1.545744, 0.0, -1.932180),
        (6, 0.0, -2.160242, 0.0, -2.160242),
        (7, 0.0, -2.828419, 0.0, -2.828419),
        (8, 0.0, None, 0.0, None),
    ],
)
def test_t11_qae_linear_and_right_continuous(m, code_c, code_w, paper_c, paper_w):
    rewards = [1.0] * m + [0.0] * (8 - m)
    for mode, c, w in (("linear", code_c, code_w), ("right_continuous", paper_c, paper_w)):
        out = adv("qae", rewards, k=0.4, quantile_mode=mode)[:, 0]
        if c is not None:
            assert_close(out[:m], [c] * m)
        if w is not None:
            assert_close(out[m:], [w] * (8 - m))


def test_qae_singleton_and_bad_k():
    assert_close(adv("qae", [1.0])[:, 0], [0.0])
    with pytest.raises(ValueError, match="k must be"):
        adv("qae", [1.0, 0.0], k=1.0)


def test_t12_w_reinforce_modes():
    r = [1, 0, 0, 1]
    assert_close(adv("w_reinforce", r, mode="psr")[:, 0], [1, 0, 0, 1])
    assert_close(adv("w_reinforce", r, mode="nsr")[:, 0], [0, -1, -1, 0])
    assert_close(adv("w_reinforce", r, mode="weighted", lam=0.1)[:, 0], [0.1, -1, -1, 0.1])
    # ±1 rewards give the same verdict-based advantages.
    assert_close(adv("w_reinforce", [1, -1, -1, 1], correct=[1, 0, 0, 1])[:, 0], [0.1, -1, -1, 0.1])


def test_t15_near_zero_std_amplification():
    rewards = [1, 1 - 1 / 4096, 1, 1]
    assert_close(adv("grpo", rewards)[:, 0], [0.4959373, -1.4878118, 0.4959373, 0.4959373])
    assert_close(adv("dr_grpo", rewards)[:, 0], [0.000061, -0.0001831, 0.000061, 0.000061])


def test_zero_std_non_binary_and_pm1_uniform_groups():
    assert_close(adv("grpo", [0.3, 0.3, 0.3])[:, 0], [0, 0, 0])
    assert_close(adv("grpo", [-1, -1, -1, -1])[:, 0], [0, 0, 0, 0])
    assert_close(adv("rloo", [-1, -1])[:, 0], [0, 0])


def test_none_estimator_and_unknown_name():
    assert_close(adv("none", [1, 0]), torch.zeros(2, 1))
    with pytest.raises(KeyError, match="grpo"):
        adv("gpro", [1, 0])


group_rewards = st.lists(
    st.lists(st.floats(-3, 3, allow_nan=False), min_size=2, max_size=6), min_size=1, max_size=5
)


@settings(max_examples=40, deadline=None)
@given(group_rewards, st.sampled_from(["grpo", "dr_grpo", "rloo"]))
def test_property_group_advantages_sum_to_zero(groups_rewards, name):
    rewards = [r for g in groups_rewards for r in g]
    ids = [i for i, g in enumerate(groups_rewards) for _ in g]
    out = adv(name, rewards, groups=ids)[:, 0]
    sums = torch.zeros(len(groups_rewards), dtype=torch.float64).index_add_(0, torch.tensor(ids), out)
    assert_close(sums, torch.zeros_like(sums))
