"""Fixtures for rollout tests: a tiny random model on disk, one shared engine, and an HF reference model."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    from rlvr.tiny.model import init_random_model

    return str(init_random_model(tmp_path_factory.mktemp("tiny_rollout"), seed=0))


def _hf_logprobs(model, prompt: list[int], response: list[int]) -> list[float]:
    """Raw logprobs of ``response`` under an HF causal LM (the learner's computation)."""
    import torch

    ids = torch.tensor([list(prompt) + list(response)])
    with torch.no_grad():
        logp = torch.log_softmax(model(ids).logits[0].float(), dim=-1)
    return [logp[len(prompt) + t - 1, tok].item() for t, tok in enumerate(response)]


def _max_delta(a: list[list[float]], b: list[list[float]]) -> float:
    assert [len(x) for x in a] == [len(y) for y in b]
    return max(abs(x - y) for xs, ys in zip(a, b) for x, y in zip(xs, ys))


@pytest.fixture(scope="session")
def hf_logprobs():
    """Reference logprob function (a fixture, so test modules need not import a conftest by name)."""
    return _hf_logprobs


@pytest.fixture(scope="session")
def max_delta():
    """Max |a - b| over two equally shaped ragged lists."""
    return _max_delta
