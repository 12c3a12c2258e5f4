"""Shared tensors for the algorithm tests: one hand-made B=4, T=4 token batch, float64."""

from __future__ import annotations

import pytest
import torch

from rlvr.algo import LossInputs

TOL = 1e-6

MASK = [[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]]
ADV_SEQ = [1.5, -0.5, -0.5, -0.5]
OLD = [[-0.5, -1.0, -2.0, -0.2], [-0.3, -3.0, 0, 0], [-2.5, -0.1, -1.5, 0], [-0.7, -0.4, -1.2, -0.9]]
LOG_RATIO = [[0.0, 0.1, 0.3, -0.3], [-0.3, 0.2, 0, 0], [1.5, 0.0, -0.1, 0], [0.05, -0.05, 0.0, 0.2]]
OLD_ENTROPY = [[1.0, 2.0, 0.5, 1.0], [0.8, 1.2, 1, 1], [2.0, 0.3, 1.0, 1], [1.5, 1.0, 0.9, 0.4]]
ENTROPY = [[1.02, 2.3, 0.5, 0.9], [0.8, 1.25, 1, 1], [1.92, 0.3, 1.06, 1], [1.5, 0.96, 0.9, 0.41]]


def t64(x) -> torch.Tensor:
    return torch.tensor(x, dtype=torch.float64)


def shared_batch(**extra) -> LossInputs:
    """The shared B=4, T=4 batch; `logprobs` is a fresh leaf so tests can read `.grad`."""
    mask = t64(MASK)
    old = t64(OLD)
    logprobs = (old + t64(LOG_RATIO)).requires_grad_(True)
    adv = t64(ADV_SEQ).unsqueeze(-1) * mask
    return LossInputs(logprobs=logprobs, old_logprobs=old, response_mask=mask, advantages=adv, **extra)


def grad_of(out, inputs: LossInputs) -> torch.Tensor:
    (g,) = torch.autograd.grad(out.loss, inputs.logprobs)
    return g


def assert_close(actual, expected, tol: float = TOL) -> None:
    actual = torch.as_tensor(actual, dtype=torch.float64)
    expected = torch.as_tensor(expected, dtype=torch.float64)
    torch.testing.assert_close(actual, expected, atol=tol, rtol=0)


@pytest.fixture
def batch() -> LossInputs:
    return shared_batch()
