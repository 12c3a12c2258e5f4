"""DRPO objective: a hand-computed vector (T9), its contract errors, and surrogate gradient == true gradient."""

from __future__ import annotations

import pytest
import torch
from conftest import assert_close, t64
from hypothesis import given, settings
from hypothesis import strategies as st

from rlvr.algo import LossInputs, compute_policy_loss

LENGTHS = [2, 8, 6, 4, 3, 5, 8, 1]
SCORES = [-0.2, -0.6, -0.4, -1.0, -0.3, -0.5, -0.8, -0.1]
UIDS = [0, 0, 0, 0, 1, 1, 1, 1]


def t9_inputs(old_shift: float = 0.0, **extra) -> LossInputs:
    mask = t64([[1.0] * n + [0.0] * (8 - n) for n in LENGTHS])
    lp = (t64(SCORES).unsqueeze(-1) * mask).requires_grad_(True)
    return LossInputs(
        logprobs=lp,
        old_logprobs=lp.detach() + old_shift * mask,
        response_mask=mask,
        group_ids=torch.tensor(UIDS),
        rewards=t64([1, 1, 0, 0, 0, 0, 0, 0]),
        **extra,
    )


def drpo(lam=0.1, **kw):
    return {"loss": {"name": "drpo", "kwargs": {"tau": 10.0, "lam": lam, "beta": 1e3, "delta": 1e-4, **kw}}}


def row_grad_sums(out, inputs):
    (g,) = torch.autograd.grad(out.loss, inputs.logprobs)
    return g.sum(-1)


def test_t9_on_policy():
    inputs = t9_inputs()
    out = compute_policy_loss(drpo(), inputs)
    assert_close(out.loss, 5.100110556)
    assert_close(out.metrics["drpo_objective"], 0.495279563 / 2)
    assert_close(out.metrics["drpo_true_loss"], -0.247639782)
    assert_close(row_grad_sums(out, inputs), [-0.4997236, -0.0002764, 0.2574978, 0.2425022, 0, 0, 0, 0])


def test_t9_kl_constraint_active():
    inputs = t9_inputs(old_shift=0.001)
    out = compute_policy_loss(drpo(), inputs)
    assert_close(out.loss, 5.101010556)
    expected = [-0.5483723, -0.194871, 0.1115518, 0.145205, -0.072973, -0.1216216, -0.1945946, -0.0243243]
    assert_close(row_grad_sums(out, inputs), expected)


def test_t9_disco_limit():
    inputs = t9_inputs()
    out = compute_policy_loss(drpo(lam=1e9), inputs)
    assert_close(out.loss, 5.2)
    assert_close(row_grad_sums(out, inputs), [-0.25, -0.25, 0.2574978, 0.2425022, 0, 0, 0, 0])


def test_correct_field_takes_precedence_and_pm1_rewards_rejected():
    inputs = t9_inputs(correct=torch.tensor([True, True] + [False] * 6))
    inputs.rewards = t64([1, 1, -1, -1, -1, -1, -1, -1])
    assert_close(compute_policy_loss(drpo(), inputs).loss, 5.100110556)
    inputs.correct = None
    with pytest.raises(ValueError, match=r"\{0,1\} correctness"):
        compute_policy_loss(drpo(), inputs)


def test_partial_groups_rejected():
    inputs = t9_inputs()
    inputs.group_ids = torch.tensor([0, 0, 0, 0, 1, 1, 1, 2])
    with pytest.raises(ValueError, match="whole groups"):
        compute_policy_loss(drpo(), inputs)
    inputs = t9_inputs(group_size=8)
    with pytest.raises(ValueError, match="group_size=8"):
        compute_policy_loss(drpo(), inputs)


def test_modifiers_rejected_and_no_valid_group_is_zero():
    with pytest.raises(ValueError, match="whole objective"):
        compute_policy_loss({**drpo(), "modifiers": [{"name": "erc"}]}, t9_inputs())
    inputs = t9_inputs()
    inputs.rewards = torch.zeros(8, dtype=torch.float64)
    out = compute_policy_loss(drpo(), inputs)
    assert_close(out.loss, 0.0)
    assert_close(row_grad_sums(out, inputs), torch.zeros(8))


def test_empty_response_is_excluded_not_nan():
    inputs = t9_inputs()
    mask = inputs.response_mask.clone()
    mask[3] = 0
    inputs.response_mask = mask
    out = compute_policy_loss(drpo(), inputs)
    assert torch.isfinite(out.loss)
    assert torch.isfinite(row_grad_sums(out, inputs)).all()


def test_truncated_correct_response_keeps_smallest_positive_weight():
    # Two correct answers, one truncated at the full width T; one wrong answer. Same per-token score.
    mask = t64([[1] * 8, [1] * 4 + [0] * 4, [1] * 2 + [0] * 6])
    lp = (torch.full((3, 8), -0.5, dtype=torch.float64) * mask).requires_grad_(True)
    inputs = LossInputs(
        lp, lp.detach(), mask, group_ids=torch.tensor([0, 0, 0]), correct=torch.tensor([True, True, False])
    )
    (g,) = torch.autograd.grad(compute_policy_loss(drpo(lam=0.5), inputs).loss, lp)
    rows = g.sum(-1)
    # Both correct rows are pushed up (negative loss gradient), the truncated one least; weights e^0 vs e^1.
    assert rows[0] < 0 and rows[1] < 0 and rows[1] < rows[0]
    assert_close(rows[0] / rows[1], 1.0 / torch.exp(torch.tensor(1.0, dtype=torch.float64)))


def true_loss(inputs: LossInputs, tau, lam, beta, delta, kl_type) -> torch.Tensor:
    """Readable per-group reference of the TRUE DRPO loss (docs/algorithms.md, "DRPO"), differentiable."""
    mask = inputs.response_mask
    lengths = mask.sum(-1)
    s = (inputs.logprobs * mask).sum(-1) / lengths.clamp(min=1)
    correct = inputs.correct
    ids = inputs.group_ids.unique()
    total = torch.zeros((), dtype=s.dtype)
    for q in ids:
        in_q = (inputs.group_ids == q) & (lengths > 0)
        p, n = in_q & correct, in_q & ~correct
        if not (p.any() and n.any()):
            continue
        omega = torch.softmax((1.0 - lengths[p] / mask.shape[1]) / lam, 0)
        lme = torch.logsumexp(s[n] / tau, 0) - torch.log(n.sum().to(s.dtype))
        total = total + (omega * s[p]).sum() - tau * lme
    lr = inputs.logprobs - inputs.old_logprobs
    kl_tok = -lr if kl_type == "kl" else torch.exp(lr) - 1 - lr
    kl = (kl_tok * mask).sum() / mask.sum().clamp(min=1)
    return -total / len(ids) + 0.5 * beta * torch.clamp(kl - delta, min=0).square()


@settings(max_examples=30, deadline=None)
@given(
    st.integers(0, 2**31 - 1),
    st.integers(1, 3),
    st.integers(2, 5),
    st.sampled_from(["kl", "low_var_kl"]),
    st.floats(0.05, 5.0),
    st.floats(0.5, 20.0),
)
def test_property_surrogate_gradient_equals_true_gradient(seed, n_q, g, kl_type, lam, tau):
    gen = torch.Generator().manual_seed(seed)
    b, t = n_q * g, 7
    lengths = torch.randint(0, t + 1, (b,), generator=gen)
    mask = (torch.arange(t).unsqueeze(0) < lengths.unsqueeze(1)).double()
    old = -torch.rand(b, t, generator=gen, dtype=torch.float64) * 2
    lp = old + torch.randn(b, t, generator=gen, dtype=torch.float64) * 0.05
    correct = torch.rand(b, generator=gen) > 0.5
    ids = torch.arange(n_q).repeat_interleave(g)[torch.randperm(b, generator=gen)]
    kw = {"tau": tau, "lam": lam, "beta": 50.0, "delta": 1e-4, "kl_type": kl_type}

    a = LossInputs(lp.clone().requires_grad_(True), old, mask, group_ids=ids, correct=correct)
    out = compute_policy_loss({"loss": {"name": "drpo", "kwargs": kw}}, a)
    (g_sur,) = torch.autograd.grad(out.loss, a.logprobs)
    r = LossInputs(lp.clone().requires_grad_(True), old, mask, group_ids=ids, correct=correct)
    ref = true_loss(r, **kw)
    (g_true,) = torch.autograd.grad(ref, r.logprobs)
    assert_close(g_sur, g_true, tol=1e-9)
    assert_close(out.metrics["drpo_true_loss"], ref.detach(), tol=1e-9)
