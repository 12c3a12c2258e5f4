"""Global normalisers: Dr. GRPO's N_seq, ERC's positive-NLL token count, DRPO's per-call KL hinge.

Hand-computed values; the multi-call tests emulate the learner: each call gets the mini-batch count divided by
the world size, a rank sums its calls' gradients and ranks are averaged (docs/algorithms.md, "Layout
invariance").
"""

from __future__ import annotations

import pytest
import torch
from conftest import assert_close, shared_batch, t64

from rlvr.algo import LossInputs, aggregate_loss, compute_policy_loss

# ---- Dr. GRPO: token sum / C, mean over sequences --------------------------------------------------------


def test_dr_grpo_divides_by_c_and_global_sequence_count():
    loss = t64([[1.0, 2.0, 9.0], [3.0, 9.0, 9.0], [9.0, 9.0, 9.0]])
    mask = t64([[1, 1, 0], [1, 0, 0], [0, 0, 0]])  # the empty third response is not a sequence
    # (1 + 2 + 3) / (C=3 * N_seq=2) = 1.0
    assert_close(aggregate_loss(loss, mask, "seq_mean_token_sum_norm", loss_scale_factor=3.0), 1.0)
    # The padded width (3) is the default C.
    assert_close(aggregate_loss(loss, mask, "seq_mean_token_sum_norm"), 1.0)
    # A mini-batch of 4 sequences over 2 ranks: this rank's normaliser is 4 / 2; the two rows are 2 calls.
    parts = [
        aggregate_loss(
            loss[[i]], mask[[i]], "seq_mean_token_sum_norm", seq_normaliser=2.0, loss_scale_factor=3.0
        )
        for i in (0, 1)
    ]
    assert_close(sum(parts), (1 + 2 + 3) / (3 * 2))


def test_dr_grpo_loss_does_not_grow_with_the_batch():
    spec = {"loss": {"name": "pg"}, "aggregation": "seq_mean_token_sum_norm", "loss_scale_factor": 4.0}
    one = compute_policy_loss(spec, shared_batch()).loss
    b = shared_batch()
    twice = LossInputs(
        logprobs=torch.cat([b.logprobs, b.logprobs]),
        old_logprobs=torch.cat([b.old_logprobs, b.old_logprobs]),
        response_mask=torch.cat([b.response_mask, b.response_mask]),
        advantages=torch.cat([b.advantages, b.advantages]),
    )
    assert_close(compute_policy_loss(spec, twice).loss, one)


# ---- ERC positive-NLL term: mean over the correct responses' tokens ------------------------------------

# shared_batch() log-probs: row sums -3.6 (4 tokens), -3.4 (2), -4.1 (3), -3.0 (4).


def nll_batch(correct: list[bool], rows: list[int]) -> LossInputs:
    """shared_batch rows with zero advantages, so the loss is the positive-NLL term alone."""
    b = shared_batch()
    return LossInputs(
        logprobs=b.logprobs.detach()[rows].requires_grad_(True),
        old_logprobs=b.old_logprobs[rows],
        response_mask=b.response_mask[rows],
        advantages=torch.zeros_like(b.advantages[rows]),
        correct=torch.tensor(correct)[rows],
    )


@pytest.mark.parametrize(
    ("correct", "nll"),
    [
        ([True, False, False, False], 3.6 / 4),  # accuracy 1/4
        ([True, True, False, True], (3.6 + 3.4 + 3.0) / (4 + 2 + 4)),  # accuracy 3/4
    ],
)
def test_positive_nll_is_a_mean_over_correct_tokens(correct, nll):
    spec = {"positive_nll_coef": 0.1}
    inputs = nll_batch(correct, [0, 1, 2, 3])
    out = compute_policy_loss(spec, inputs)
    assert_close(out.loss, 0.1 * nll)
    (g_full,) = torch.autograd.grad(out.loss, inputs.logprobs)
    n_pos = float((inputs.response_mask * inputs.correct.unsqueeze(-1)).sum())
    assert_close(g_full, -0.1 / n_pos * inputs.response_mask * inputs.correct.unsqueeze(-1))
    # Split in two calls with the global count of correct tokens: values and gradients add up.
    total, grads = 0.0, []
    for rows in ([0, 1], [2, 3]):
        part = nll_batch(correct, rows)
        o = compute_policy_loss(spec, part, token_normaliser=13.0, positive_token_normaliser=n_pos)
        total += float(o.loss.detach())
        grads.append(torch.autograd.grad(o.loss, part.logprobs)[0])
    assert_close(total, 0.1 * nll)
    assert_close(torch.cat(grads), g_full)


# ---- DRPO: each call's hinge acts on its own KL, weighted by its token share ---------------------------

DELTA, BETA = 1e-4, 1e3
LENGTHS = [3, 7, 5, 2, 6, 4, 8, 1, 5, 5, 2, 7, 3, 6, 4, 8]  # 4 groups of 4
CORRECT = [1, 0, 0, 1, 0, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0]


def drpo_batch(kl_tok: torch.Tensor) -> LossInputs:
    """4 whole groups; per-token KL(old || new) (kl_type "kl" is old - new) set by `kl_tok` [16, 8]."""
    gen = torch.Generator().manual_seed(0)
    mask = t64([[1.0] * n + [0.0] * (8 - n) for n in LENGTHS])
    lp = (-torch.rand(16, 8, generator=gen, dtype=torch.float64) * mask).requires_grad_(True)
    return LossInputs(
        logprobs=lp,
        old_logprobs=lp.detach() + kl_tok * mask,
        response_mask=mask,
        group_ids=torch.arange(16) // 4,
        correct=torch.tensor(CORRECT, dtype=torch.bool),
        group_size=4,
    )


def drpo_spec(beta: float) -> dict:
    kw = {"tau": 10.0, "lam": 0.1, "beta": beta, "delta": DELTA, "max_tokens": 8}
    return {"loss": {"name": "drpo", "kwargs": kw}}


def layout_grad(kl_tok: torch.Tensor, ranks: list[list[list[int]]], beta: float) -> torch.Tensor:
    """d loss / d logprobs over one mini-batch given as ranks -> calls -> groups, as the learner applies it."""
    full = drpo_batch(kl_tok)
    n_tok, world = float(full.response_mask.sum()), len(ranks)
    grad = torch.zeros_like(full.logprobs)
    for calls in ranks:
        for groups in calls:
            rows = [r for g in groups for r in range(4 * g, 4 * g + 4)]
            b = drpo_batch(kl_tok)
            part = LossInputs(
                logprobs=b.logprobs[rows],
                old_logprobs=b.old_logprobs[rows],
                response_mask=b.response_mask[rows],
                group_ids=b.group_ids[rows],
                correct=b.correct[rows],
                group_size=4,
            )
            out = compute_policy_loss(
                drpo_spec(beta), part, token_normaliser=n_tok / world, question_normaliser=4 / world
            )
            (g,) = torch.autograd.grad(out.loss, b.logprobs)
            grad += g / world  # DeepSpeed averages gradients over ranks
    return grad


def penalty_grad(kl_tok, ranks):
    return layout_grad(kl_tok, ranks, BETA) - layout_grad(kl_tok, ranks, 0.0)


def expected_penalty_grad(kl_tok: torch.Tensor, ranks) -> torch.Tensor:
    """sum_c (n_c / N) beta [KL_c - delta]_+ grad KL_c, grad KL_c = -1 / n_c on the call's tokens."""
    mask = drpo_batch(kl_tok).response_mask
    out = torch.zeros_like(mask)
    for calls in ranks:
        for groups in calls:
            rows = [r for g in groups for r in range(4 * g, 4 * g + 4)]
            kl_c = float((kl_tok * mask)[rows].sum() / mask[rows].sum())
            out[rows] = -BETA * max(kl_c - DELTA, 0.0) / float(mask.sum()) * mask[rows]
    return out


LAYOUTS = {
    "1 call": [[[0, 1, 2, 3]]],
    "2 calls": [[[0, 1], [2, 3]]],
    "4 calls": [[[0], [1], [2], [3]]],
    "2 ranks, uneven calls": [[[0], [1]], [[2, 3]]],
}


@pytest.mark.parametrize("kl_level", [20.0, 1.5])
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_drpo_hinge_sees_the_real_kl_whatever_the_layout(layout, kl_level):
    """Uniform per-token KL: every call's KL equals the mini-batch's, so any layout gives the whole-batch
    hinge gradient. The old per-call KL/M fell to 0.48x, 0.22x and 0 (hinge off at 1.5 delta)."""
    kl_tok = torch.full((16, 8), kl_level * DELTA, dtype=torch.float64)
    whole = penalty_grad(kl_tok, LAYOUTS["1 call"])
    assert float(whole.abs().sum()) > 0
    got = penalty_grad(kl_tok, LAYOUTS[layout])
    # float64: the layouts differ only in summation order and in the logprob - old subtraction (~1e-16
    # absolute on a KL - delta of >= 5e-5), so 1e-9 relative is far above rounding and far below any bug.
    torch.testing.assert_close(got, whole, rtol=1e-9, atol=1e-9 * float(whole.abs().max()))


@pytest.mark.parametrize("kl_level", [20.0, 1.5])
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_drpo_hinge_gradient_is_the_token_weighted_per_call_hinge(layout, kl_level):
    """Non-uniform KL (each token 0.6x-1.4x of the level): the penalty gradient is exactly the chosen
    definition, and its total stays within 25% of the whole-batch hinge's."""
    gen = torch.Generator().manual_seed(1)
    kl_tok = kl_level * DELTA * (0.6 + 0.8 * torch.rand(16, 8, generator=gen, dtype=torch.float64))
    got = penalty_grad(kl_tok, LAYOUTS[layout])
    want = expected_penalty_grad(kl_tok, LAYOUTS[layout])
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9 * float(want.abs().max()))
    whole = expected_penalty_grad(kl_tok, LAYOUTS["1 call"])
    ratio = float(got.sum() / whole.sum())
    assert 0.75 < ratio < 1.25, ratio
