"""Fixtures for orchestration tests: a tiny model, a loopback Ray cluster and a two-worker rollout group."""

from __future__ import annotations

import time

import pytest


@pytest.fixture(scope="session")
def orch_model_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    from rlvr.tiny.model import init_random_model

    return str(init_random_model(tmp_path_factory.mktemp("tiny_orchestrate"), seed=0))


@pytest.fixture(scope="module")
def ray_cluster():
    from rlvr.orchestrate import init_ray, shutdown_ray

    resources = init_ray(device="cpu", num_cpus=2)
    yield resources
    shutdown_ray()


@pytest.fixture(scope="module")
def rollout_group(ray_cluster, orch_model_path: str):
    from rlvr.config.rollout import RolloutConfig
    from rlvr.orchestrate import RolloutGroup

    cfg = RolloutConfig(
        max_prompt_tokens=32, max_response_tokens=32, kv_cache_memory_mb=32, num_workers=2, call_timeout_s=120
    )
    t0 = time.perf_counter()
    group = RolloutGroup(orch_model_path, cfg, seed=0, device="cpu", start_timeout_s=300)
    print(
        f"2 rollout workers ready in {time.perf_counter() - t0:.1f} s; engine start (in actor): "
        f"{[info['engine_start_s'] for info in group.ready_info]} s"
    )
    yield group
    group.shutdown()


def _hf_logprobs(model, prompt: list[int], response: list[int]) -> list[float]:
    """Raw logprobs of ``response`` under an HF causal LM: the learner's computation."""
    import torch

    ids = torch.tensor([list(prompt) + list(response)])
    with torch.no_grad():
        logp = torch.log_softmax(model(ids).logits[0].float(), dim=-1)
    return [logp[len(prompt) + t - 1, tok].item() for t, tok in enumerate(response)]


@pytest.fixture(scope="session")
def hf_logprobs():
    """The reference logprob function (a fixture, so test modules need not import a conftest by name)."""
    return _hf_logprobs
