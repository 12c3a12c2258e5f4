"""DRPO, the decoupled-reward method of arXiv 2510.04474 (Optimization-AI/DRPO `compute_policy_loss_drpo`;
docs/algorithms.md "DRPO"), as a whole objective replacing advantage estimator and policy loss. Not to be
confused with "Divergence Regularized Policy Optimization" (arXiv 2606.09821), which uses the same acronym.

Objective per question q with correct set P and wrong set N (s = mean token log-prob of a response):
    J_q = sum_{i in P} w_i s_i - tau log( (1/|N|) sum_{j in N} exp(s_j / tau) ),
    w = softmax over P of (1 - |o_i| / C) / lambda          (lambda -> inf recovers DisCO),
maximised subject to KL(pi_old || pi) <= delta through the squared hinge (beta/2) [KL - delta]_+^2.
Only groups with |P| >= 1 and |N| >= 1 contribute; the denominator counts every question of the mini-batch.

The hinge is not additive over micro-batches, so each loss call applies it to its OWN KL estimate (the mean
over the call's tokens) and weighs the penalty by the call's share of the mini-batch's tokens, as the authors'
release does per micro-batch: the summed gradient is sum_c (n_c / N) beta [KL_c - delta]_+ grad KL_c. This
keeps the constraint at KL <= delta whatever the layout (feeding the hinge a 1/M share of the KL made it
KL <= M delta). It equals the whole-batch hinge exactly when every call's KL is on the same side of delta and
equal; otherwise it differs by the spread of the micro-batch KLs around delta.

The training loss is the reference's surrogate: its GRADIENT equals that of the true objective, its VALUE does
not (tau * S / sg(S) stands for tau log S). The true value is returned in the metrics (`drpo_objective`,
`drpo_true_loss`) for logging.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from rlvr.algo.contract import LossInputs, LossOutputs, masked_sum
from rlvr.algo.groups import Groups
from rlvr.algo.registry import register_objective


def _verdict(inputs: LossInputs) -> Tensor:
    """Bool correctness; DRPO is defined on {0,1} outcomes only (±1 rewards would empty the negative set)."""
    source, value = ("correct", inputs.correct) if inputs.correct is not None else ("rewards", inputs.rewards)
    if value is None:
        raise ValueError("drpo needs LossInputs.correct (bool) or {0,1} LossInputs.rewards; got neither")
    if value.dtype == torch.bool:
        return value
    bad = (value != 0) & (value != 1)
    if bool(bad.any()):
        found = sorted({float(v) for v in value[bad].unique()[:5]})
        raise ValueError(
            f"drpo needs {{0,1}} correctness, but LossInputs.{source} holds {found}; "
            "pass the verifier verdict as LossInputs.correct (±1 rewards make the negative set empty)"
        )
    return value.bool()


def _whole_groups(inputs: LossInputs) -> Groups:
    inputs.require("group_ids", by="drpo")
    groups = Groups.from_ids(inputs.group_ids)
    sizes = sorted({int(c) for c in groups.counts.unique()})
    if len(sizes) != 1:
        raise ValueError(
            f"drpo needs whole groups in one loss call, but this call has group sizes {sizes}; "
            "build micro-batches from whole prompts"
        )
    if inputs.group_size is not None and sizes[0] != inputs.group_size:
        raise ValueError(
            f"drpo needs whole groups in one loss call: groups here have {sizes[0]} responses, "
            f"expected group_size={inputs.group_size}"
        )
    return groups


def _safe(x: Tensor) -> Tensor:
    return torch.where(x > 0, x, torch.ones_like(x))


@register_objective("drpo", budget_kwarg="max_tokens")
def drpo(
    inputs: LossInputs,
    *,
    tau: float = 10.0,
    lam: float = 0.1,
    beta: float = 1e3,
    delta: float = 1e-4,
    kl_type: Literal["kl", "low_var_kl"] = "kl",
    max_tokens: int | None = None,
    token_normaliser: float | Tensor | None = None,
    question_normaliser: float | Tensor | None = None,
) -> LossOutputs:
    """DRPO loss for one call holding whole groups.

    Args:
        inputs: needs logprobs, old_logprobs, response_mask, group_ids and correct (or {0,1} rewards).
        tau: temperature of the negative log-mean-exp (10).
        lam: lambda of the length-reward weights (0.1; large values -> DisCO's uniform weights).
        beta, delta: KL squared-hinge penalty coefficient (1e3) and budget (1e-4).
        kl_type: "kl" (mean old - new log-prob) or "low_var_kl" (mean r - 1 - log r).
        max_tokens: C in the length ratio |o|/C; default the padded width T (the reference pads to it).
        token_normaliser: the mini-batch's token count (over the world size) that sets this call's share of
            the KL penalty, n_call / token_normaliser (default: this call's tokens, share 1).
        question_normaliser: question count the objective divides by (default this call's groups).

    Raises:
        ValueError: partial groups, or correctness outside {0,1}.
    """
    groups = _whole_groups(inputs)
    correct = _verdict(inputs)
    mask = inputs.mask
    lengths = mask.sum(-1)
    nonempty = lengths > 0
    pos, neg = correct & nonempty, ~correct & nonempty
    idx = groups.index
    s = torch.where(mask.bool(), inputs.logprobs, torch.zeros_like(mask)).sum(-1) / lengths.clamp(min=1)
    valid_q = (groups.sum(pos.to(mask.dtype)) > 0) & (groups.sum(neg.to(mask.dtype)) > 0)

    # Negatives: S = sum_N exp(s/tau - max); tau*S/sg(S) has the gradient of tau*log S.
    z = s / tau
    z_max = groups.amax(torch.where(neg, z.detach(), torch.full_like(z, -torch.inf)))
    z_max = torch.where(torch.isfinite(z_max), z_max, torch.zeros_like(z_max))
    big_s = groups.sum(torch.where(neg, torch.exp(z - z_max[idx]), torch.zeros_like(z)))
    neg_term = big_s / _safe(big_s).detach()
    log_mean_exp = z_max + torch.log(_safe(big_s)) - torch.log(_safe(groups.sum(neg.to(mask.dtype))))

    # Positives: self-normalised length weights, stabilised by the group max.
    t_width = float(max_tokens if max_tokens is not None else mask.shape[-1])
    w_log = (1.0 - lengths / t_width) / lam
    w_max = groups.amax(torch.where(pos, w_log, torch.full_like(w_log, -torch.inf)))
    w_max = torch.where(torch.isfinite(w_max), w_max, torch.zeros_like(w_max))
    w = torch.where(pos, torch.exp(w_log - w_max[idx]), torch.zeros_like(w_log))
    omega = w / _safe(groups.sum(w))[idx]
    pos_term = groups.sum(omega * s)

    zero = torch.zeros_like(pos_term)
    n_q = question_normaliser if question_normaliser is not None else groups.num_groups
    surrogate_j = torch.where(valid_q, pos_term - tau * neg_term, zero).sum() / n_q
    true_j = torch.where(valid_q, pos_term - tau * log_mean_exp, zero).sum() / n_q

    if kl_type not in ("kl", "low_var_kl"):
        raise ValueError(f"drpo kl_type must be 'kl' or 'low_var_kl', got {kl_type!r}")
    lr = (inputs.logprobs - inputs.old_logprobs.detach()).clamp(-20.0, 20.0)
    kl_tok = -lr if kl_type == "kl" else torch.exp(lr) - 1.0 - lr
    n_call = mask.sum().clamp(min=1)
    n_tok = token_normaliser if token_normaliser is not None else n_call
    kl_sum = masked_sum(kl_tok, mask)
    kl = kl_sum / n_call
    hinge = torch.clamp(kl - delta, min=0.0)
    # share * beta [kl - delta]_+ * kl, share = n_call / n_tok: the gradient of share * (beta/2) hinge^2.
    loss = -surrogate_j + (beta * hinge).detach() * kl_sum / n_tok
    true_loss = -true_j + (n_call / n_tok) * 0.5 * beta * hinge.square()
    metrics = {
        "drpo_objective": true_j.detach(),
        "drpo_true_loss": true_loss.detach(),
        "drpo_kl": kl.detach(),
        "drpo_kl_coef": (beta * hinge).detach(),
        "drpo_valid_group_frac": valid_q.to(mask.dtype).mean().detach(),
    }
    return LossOutputs(loss=loss, metrics=metrics)
