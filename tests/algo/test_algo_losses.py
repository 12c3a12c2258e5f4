"""Per-token losses, modifiers, KL and aggregation against hand-computed vectors (values and gradients).

Vector labels (T3 ... T8, T16) name the cases: T3 PPO clip and aggregation, T4 GSPO, T5 Clip-Cov, T6 KL-Cov,
T7 ERC and GPPO, T8 KL estimators, T16 the full GRPO objective.
"""

from __future__ import annotations

import pytest
import torch
from conftest import ENTROPY, OLD, OLD_ENTROPY, assert_close, grad_of, shared_batch, t64
from hypothesis import given, settings
from hypothesis import strategies as st

from rlvr.algo import LossInputs, compute_policy_loss, kl_estimate

DAPO = {"name": "ppo_clip", "kwargs": {"eps_low": 0.2, "eps_high": 0.28, "clip_ratio_c": 3.0}}
SYM = {"name": "ppo_clip", "kwargs": {"eps_low": 0.2, "eps_high": 0.2, "clip_ratio_c": 3.0}}


@pytest.mark.parametrize(
    ("agg", "sym", "dapo"),
    [
        ("token_mean", -0.0379932, -0.0472240),
        ("seq_mean_token_mean", 0.0833914, 0.0758914),
        ("seq_mean_token_sum", -0.1234780, -0.1534780),
        ("seq_mean_token_sum_norm", -0.1234780 / 4, -0.1534780 / 4),  # C = T = 4, N_seq = 4
    ],
)
def test_t3_ppo_clip_aggregations(agg, sym, dapo):
    assert_close(compute_policy_loss({"loss": SYM, "aggregation": agg}, shared_batch()).loss, sym)
    assert_close(compute_policy_loss({"loss": DAPO, "aggregation": agg}, shared_batch()).loss, dapo)


def test_t3_dapo_gradient_and_metrics():
    inputs = shared_batch()
    out = compute_policy_loss({"loss": DAPO}, inputs)
    expected = [
        [-0.1153846, -0.1275197, 0, -0.085479],
        [0, 0.046977, 0, 0],
        [0, 0.0384615, 0.0348014, 0],
        [0.0404335, 0.0365857, 0.0384615, 0.046977],
    ]
    assert_close(grad_of(out, inputs), expected)
    m = out.metrics
    assert_close(m["clip_frac"], 2 / 13)
    assert_close(m["clip_frac_upper"], 1 / 13)
    assert_close(m["clip_frac_lower"], 1 / 13)
    assert_close(m["clip_frac_dual"], 1 / 13)
    assert_close(m["ppo_kl"], -0.1230769)


def test_token_normaliser_makes_microbatches_add_up():
    full = compute_policy_loss({"loss": DAPO}, shared_batch()).loss
    halves = []
    for rows in ([0, 1], [2, 3]):
        b = shared_batch()
        part = LossInputs(
            logprobs=b.logprobs[rows],
            old_logprobs=b.old_logprobs[rows],
            response_mask=b.response_mask[rows],
            advantages=b.advantages[rows],
        )
        halves.append(compute_policy_loss({"loss": DAPO}, part, token_normaliser=13).loss)
    assert_close(sum(halves), full)


@pytest.mark.parametrize(
    ("eps", "loss", "row0", "row1"),
    [((3e-4, 4e-4), 0.0805551, 0.0, 0.0), ((0.2, 0.28), 0.0651531, -0.0961233, 0.0594518)],
)
def test_t4_gspo(eps, loss, row0, row1):
    inputs = shared_batch()
    spec = {
        "loss": {"name": "gspo", "kwargs": {"eps_low": eps[0], "eps_high": eps[1]}},
        "aggregation": "token_mean",
    }
    out = compute_policy_loss(spec, inputs)
    assert_close(out.loss, loss)
    expected = t64([[row0] * 4, [row1] * 2 + [0, 0], [0.0664446] * 3 + [0], [0.0328522] * 4])
    assert_close(grad_of(out, inputs), expected)


CLIP_COV = {"name": "clip_cov", "kwargs": {"ratio": 2e-4, "lb": 1.0, "ub": 5.0}}


def test_t5_clip_cov_recipe_eps_one():
    inputs = shared_batch()
    spec = {
        "loss": {"name": "ppo_clip", "kwargs": {"eps_low": 1.0, "eps_high": 1.0}},
        "modifiers": [CLIP_COV],
    }
    out = compute_policy_loss(spec, inputs, generator=torch.Generator().manual_seed(0))
    assert_close(out.loss, -0.0475498)
    assert_close(out.metrics["cov_clip_frac"], 1 / 13)
    expected = [
        [-0.1153846, -0.1275197, -0.1557529, -0.085479],
        [0.028493, 0, 0, 0],
        [0.1723727, 0.0384615, 0.0348014, 0],
        [0.0404335, 0.0365857, 0.0384615, 0.046977],
    ]
    assert_close(grad_of(out, inputs), expected)


def test_t5_clip_cov_eps_02():
    inputs = shared_batch()
    spec = {"loss": {"name": "ppo_clip", "kwargs": {}}, "modifiers": [CLIP_COV]}
    out = compute_policy_loss(spec, inputs)
    assert_close(out.loss, -0.0279822)
    g = grad_of(out, inputs)
    assert g[0, 2] == 0 and g[1, 0] == 0 and g[1, 1] == 0


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(0, 2**31 - 1))
def test_property_clip_cov_fixed_generator_is_deterministic(data_seed, pick_seed):
    g = torch.Generator().manual_seed(data_seed)
    mask = (torch.rand(6, 8, generator=g) > 0.2).double()
    old = -torch.rand(6, 8, generator=g, dtype=torch.float64) * 2
    lp = old + torch.randn(6, 8, generator=g, dtype=torch.float64) * 0.2
    adv = torch.randn(6, 1, generator=g, dtype=torch.float64) * mask
    # A wide window and ratio 0.1 leave more candidates than picks, so the pick really is random.
    spec = {
        "loss": {"name": "pg"},
        "modifiers": [{"name": "clip_cov", "kwargs": {"ratio": 0.1, "lb": -10, "ub": 10}}],
    }

    def run(seed):
        inputs = LossInputs(lp.clone().requires_grad_(True), old, mask, adv)
        out = compute_policy_loss(spec, inputs, generator=torch.Generator().manual_seed(seed))
        return out.loss.detach(), grad_of(out, inputs)

    (l1, g1), (l2, g2) = run(pick_seed), run(pick_seed)
    assert torch.equal(l1, l2) and torch.equal(g1, g2)
    assert int(((g1 == 0) & mask.bool()).sum()) >= max(int(0.1 * mask.sum()), 1)


def test_clip_cov_pick_depends_on_the_generator():
    spec = {
        "loss": {"name": "pg"},
        "modifiers": [{"name": "clip_cov", "kwargs": {"ratio": 0.1, "lb": -10, "ub": 10}}],
    }

    def zero_pattern(seed):
        inputs = shared_batch()
        out = compute_policy_loss(spec, inputs, generator=torch.Generator().manual_seed(seed))
        return tuple((grad_of(out, inputs) == 0).flatten().tolist())

    assert len({zero_pattern(s) for s in range(8)}) > 1


KL_COV = {"name": "kl_cov", "kwargs": {"ratio": 2e-4, "coef": 1.0}}


def test_t6_kl_cov():
    inputs = shared_batch()
    out = compute_policy_loss({"loss": {"name": "pg"}, "modifiers": [KL_COV]}, inputs)
    assert_close(out.loss, 0.0148118)
    assert_close(out.metrics["abs_log_ratio"], 0.2384615)
    expected = [
        [-0.1153846, -0.1275197, -0.1557529, -0.085479],
        [0.028493, 0.1239001, 0, 0],
        [0.1723727, 0.0384615, 0.0348014, 0],
        [0.0404335, 0.0365857, 0.0384615, 0.046977],
    ]
    assert_close(grad_of(out, inputs), expected)


def erc_batch():
    return shared_batch(entropy=t64(ENTROPY), old_entropy=t64(OLD_ENTROPY))


ERC = {"name": "erc", "kwargs": {"low": 0.05, "high": 0.05}}
DAPO10 = {"name": "ppo_clip", "kwargs": {"eps_low": 0.2, "eps_high": 0.28, "clip_ratio_c": 10.0}}


def test_t7_erc_on_dapo():
    on, off = erc_batch(), erc_batch()
    out_on = compute_policy_loss({"loss": DAPO10, "modifiers": [ERC]}, on)
    out_off = compute_policy_loss({"loss": DAPO10}, off)
    assert_close(out_on.loss, 0.0097640)
    assert_close(out_off.loss, 0.0097640)
    assert_close(out_on.metrics["erc_kept_frac"], 10 / 13)
    g_on = [
        [-0.1153846, 0, 0, 0],
        [0, 0.046977, 0, 0],
        [0.1723727, 0.0384615, 0, 0],
        [0.0404335, 0.0365857, 0.0384615, 0.046977],
    ]
    g_off = [
        [-0.1153846, -0.1275197, 0, -0.085479],
        [0, 0.046977, 0, 0],
        [0.1723727, 0.0384615, 0.0348014, 0],
        [0.0404335, 0.0365857, 0.0384615, 0.046977],
    ]
    assert_close(grad_of(out_on, on), g_on)
    assert_close(grad_of(out_off, off), g_off)


def test_t7_gppo_with_and_without_erc():
    gppo = {"name": "gppo", "kwargs": {"eps_low": 0.2, "eps_high": 0.2, "clip_ratio_c": 10.0}}
    inputs = erc_batch()
    out = compute_policy_loss({"loss": gppo}, inputs)
    assert_close(out.loss, 0.0189948)
    expected = t64(
        [
            [-0.1153846, -0.1275197, -0.1384615, -0.085479],
            [0.0307692, 0.046977, 0, 0],
            [0.1723727, 0.0384615, 0.0348014, 0],
            [0.0404335, 0.0365857, 0.0384615, 0.046977],
        ]
    )
    assert_close(grad_of(out, inputs), expected)
    inputs = erc_batch()
    out = compute_policy_loss({"loss": gppo, "modifiers": [ERC]}, inputs)
    assert_close(out.loss, 0.0189948)
    for i, j in ((0, 1), (0, 3), (2, 2)):
        expected[i, j] = 0.0
    assert_close(grad_of(out, inputs), expected)


@pytest.mark.parametrize(
    ("name", "values"),
    [
        ("k1", [0.2, 0, -1]),
        ("abs", [0.2, 0, 1]),
        ("k2", [0.02, 0, 0.5]),
        ("k3", [0.0187308, 0, 0.7182818]),
    ],
)
def test_t8_kl_estimators_and_straight_through(name, values):
    logp = t64([-1.0, -0.5, -2.0]).requires_grad_(True)
    ref = t64([-1.2, -0.5, -1.0])
    assert_close(kl_estimate(logp, ref, name), values)
    plus = kl_estimate(logp, ref, name + "+")
    assert_close(plus, values)
    (g,) = torch.autograd.grad(plus.sum(), logp)
    assert_close(g, logp.detach() - ref)  # k2 gradient


def test_t16_deepseekmath_grpo_full_objective():
    mask = t64([[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]])
    inputs = shared_batch(ref_logprobs=t64(OLD) - 0.1 * mask)
    spec = {
        "loss": {"name": "ppo_clip", "kwargs": {"eps_low": 0.2, "eps_high": 0.2, "clip_ratio_c": None}},
        "kl_to_ref": {"estimator": "k3", "coef": 0.04, "as": "loss"},
        "aggregation": "seq_mean_token_mean",
    }
    out = compute_policy_loss(spec, inputs)
    assert_close(out.loss, 0.1485609)
    expected = [
        [-0.0935121, -0.1031566, 0.0008242, -0.0700052],
        [-0.001107, 0.0776336, 0, 0],
        [0.1893974, 0.0419839, 0.0377016, 0],
        [0.0332005, 0.0298478, 0.0314879, 0.0388168],
    ]
    assert_close(grad_of(out, inputs), expected)
    k3 = kl_estimate(inputs.logprobs.detach(), inputs.ref_logprobs, "k3") * mask
    assert_close(k3[2, 0], 0.8018965)
    # As a reward the KL term is not part of the loss.
    spec["kl_to_ref"]["as"] = "reward"
    assert "kl_ref" not in compute_policy_loss(spec, shared_batch(ref_logprobs=inputs.ref_logprobs)).metrics


def test_entropy_bonus_and_positive_nll():
    base = compute_policy_loss({}, erc_batch()).loss
    out = compute_policy_loss({"entropy_coef": 0.01}, erc_batch())
    mask = t64([[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]])
    ent_mean = (t64(ENTROPY) * mask).sum() / 13
    assert_close(out.loss, base - 0.01 * ent_mean)
    inputs = shared_batch(correct=torch.tensor([True, False, False, False]))
    out = compute_policy_loss({"positive_nll_coef": 0.1}, inputs)
    nll = -(inputs.logprobs.detach()[0]).sum() / 4  # mean over the correct response's 4 tokens
    assert_close(out.loss - out.metrics["policy_loss"], 0.1 * nll)


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"LossInputs\.entropy"):
        compute_policy_loss({"modifiers": [ERC]}, shared_batch())
    with pytest.raises(ValueError, match="unknown algorithm spec keys"):
        compute_policy_loss({"los": DAPO}, shared_batch())
    with pytest.raises(KeyError, match="ppo_clip"):
        compute_policy_loss({"loss": {"name": "ppo"}}, shared_batch())
    with pytest.raises(KeyError, match="token_mean"):
        compute_policy_loss({"aggregation": "token-mean"}, shared_batch())


def test_nan_in_padding_does_not_leak():
    inputs = shared_batch()
    lp = inputs.logprobs.detach().clone()
    lp[1, 2:] = float("nan")
    inputs.logprobs = lp.requires_grad_(True)
    for agg in ("token_mean", "seq_mean_token_mean", "seq_mean_token_sum"):
        out = compute_policy_loss({"loss": DAPO, "aggregation": agg}, inputs)
        assert torch.isfinite(out.loss)


@settings(max_examples=25, deadline=None)
@given(
    st.integers(0, 2**31 - 1),
    st.sampled_from(["ppo_clip", "gppo", "pg", "gspo"]),
    st.sampled_from(["token_mean", "seq_mean_token_mean", "seq_mean_token_sum"]),
)
def test_property_erc_changes_gradients_not_value(seed, loss_name, agg):
    g = torch.Generator().manual_seed(seed)
    b, t = 5, 6
    mask = (torch.rand(b, t, generator=g) > 0.3).double()
    old = -torch.rand(b, t, generator=g, dtype=torch.float64) * 3
    lp = old + torch.randn(b, t, generator=g, dtype=torch.float64) * 0.3
    adv = torch.randn(b, 1, generator=g, dtype=torch.float64) * mask
    old_ent = torch.rand(b, t, generator=g, dtype=torch.float64) + 0.1
    ent = old_ent * (1 + torch.randn(b, t, generator=g, dtype=torch.float64) * 0.08)

    def run(mods):
        inputs = LossInputs(lp.clone().requires_grad_(True), old, mask, adv, entropy=ent, old_entropy=old_ent)
        out = compute_policy_loss(
            {"loss": {"name": loss_name}, "modifiers": mods, "aggregation": agg}, inputs
        )
        return out, grad_of(out, inputs)

    (on, g_on), (off, g_off) = run([ERC]), run([])
    assert_close(on.loss, off.loss, tol=1e-12)
    rho = (ent + 1e-8) / (old_ent + 1e-8)
    keep = (rho > 0.95) & (rho < 1.05) & mask.bool()
    assert_close(torch.where(keep, g_off, torch.zeros_like(g_off)), g_on, tol=1e-12)
