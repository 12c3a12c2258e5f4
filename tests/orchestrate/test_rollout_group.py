"""Ray + vLLM: a two-worker rollout group, object-store weight sync and its logprob verification."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration

TOL = 1e-4


@pytest.fixture(scope="module")
def learner(orch_model_path: str):
    """The stand-in learner: a plain HF model whose forward pass gives the reference logprobs."""
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(orch_model_path, dtype=torch.float32).eval()


@pytest.fixture(scope="module")
def probe(orch_model_path: str):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(orch_model_path)
    prompts = [tok("probe: 12+30=")["input_ids"], tok("Q")["input_ids"]]
    responses = [tok(" 42, so the answer is 42")["input_ids"], tok("uick brown fox")["input_ids"]]
    return prompts, responses


def _perturb(model, seed: int, scale: float = 0.1) -> None:
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen))


def test_generate_splits_and_keeps_order(rollout_group, probe) -> None:
    prompts = probe[0] + [probe[0][0][:5]]  # 3 prompts over 2 workers: spans [0,2) and [2,3)
    out = rollout_group.generate(prompts, n=2, temperature=1.0, max_tokens=8, seed=7)
    assert len(out) == 3 and all(len(g) == 2 for g in out)
    # prompt i is seeded with seed + i*n wherever it runs, so running it alone reproduces it
    alone = rollout_group.generate([prompts[2]], n=2, temperature=1.0, max_tokens=8, seed=7 + 2 * 2)
    assert [c.token_ids for c in alone[0]] == [c.token_ids for c in out[2]]
    health = rollout_group.health()
    assert [h["rank"] for h in health] == [0, 1]
    assert all(h["generate_calls"] >= 1 for h in health)  # both workers served
    assert len({h["pid"] for h in health}) == 2


def test_sync_then_verify_passes_and_stale_engine_is_caught(
    rollout_group, learner, probe, hf_logprobs
) -> None:
    from rlvr.orchestrate import ObjectStoreTransport, WeightSyncError, verify_sync

    prompts, responses = probe
    _perturb(learner, seed=1)
    learner_lp = [hf_logprobs(learner, p, r) for p, r in zip(prompts, responses)]
    with pytest.raises(WeightSyncError, match="worker 0"):  # engines still hold the old weights
        verify_sync(rollout_group, prompts, responses, learner_lp, TOL)

    stats = ObjectStoreTransport().push(rollout_group, list(learner.state_dict().items()))
    maxima = verify_sync(rollout_group, prompts, responses, learner_lp, TOL)
    print(
        f"sync: {stats.seconds * 1e3:.0f} ms total, put {stats.put_seconds * 1e3:.0f} ms, "
        f"{stats.num_bytes / 2**20:.1f} MiB x {len(stats.worker_seconds)} workers, "
        f"in-worker {[round(s * 1e3) for s in stats.worker_seconds]} ms; max |Δ| {maxima}"
    )
    assert len(maxima) == 2 and max(maxima) < TOL
    assert stats.num_bytes == sum(t.numel() * t.element_size() for t in learner.state_dict().values())


def push_corrupted(group, weights, rank: int):
    """A clean push, then a noisy copy of one decoder matrix into worker `rank` only (its own update call)."""
    import ray

    from rlvr.orchestrate import ObjectStoreTransport
    from rlvr.orchestrate.rollout_worker import corrupt_one_tensor, layer_of

    stats = ObjectStoreTransport().push(group, weights)
    noisy, name = corrupt_one_tensor(list(weights))
    layer = [t for t in noisy if layer_of(t[0]) == layer_of(name)]  # fused q/k/v must reload together
    ray.get(group.workers[rank].update_weights.remote(layer))
    return stats


class CorruptingTransport:
    """A transport whose pushes leave worker `rank` with corrupted weights (fault injection)."""

    def __init__(self, rank: int) -> None:
        self.rank = rank

    def push(self, group, weights, *, timeout=None, full: bool = True):
        return push_corrupted(group, weights, self.rank)


def test_corrupted_sync_is_caught_and_names_the_worker(rollout_group, learner, probe, hf_logprobs) -> None:
    from rlvr.orchestrate import ObjectStoreTransport, WeightSyncError, verify_sync

    prompts, responses = probe
    _perturb(learner, seed=2)
    learner_lp = [hf_logprobs(learner, p, r) for p, r in zip(prompts, responses)]
    weights = list(learner.state_dict().items())
    push_corrupted(rollout_group, weights, rank=1)
    with pytest.raises(WeightSyncError, match=r"rollout worker 1: max \|Δlogprob\|") as err:
        verify_sync(rollout_group, prompts, responses, learner_lp, TOL)
    print(err.value)
    # a clean push repairs it
    ObjectStoreTransport().push(rollout_group, weights)
    assert max(verify_sync(rollout_group, prompts, responses, learner_lp, TOL)) < TOL


def test_sync_weights_pushes_and_verifies_from_config(rollout_group, learner, probe, hf_logprobs) -> None:
    from rlvr.config.rollout import SyncConfig
    from rlvr.orchestrate import ObjectStoreTransport, WeightSyncError, sync_weights

    prompts, responses = probe
    _perturb(learner, seed=3)
    learner_lp = [hf_logprobs(learner, p, r) for p, r in zip(prompts, responses)]
    weights = list(learner.state_dict().items())
    stats = sync_weights(
        rollout_group,
        ObjectStoreTransport(),
        weights,
        SyncConfig(tolerance=TOL),
        probe_prompt_ids=prompts,
        probe_response_ids=responses,
        learner_logprobs=learner_lp,
    )
    assert stats.verify_max_delta is not None and stats.verify_max_delta < TOL
    with pytest.raises(WeightSyncError, match="worker 0"):
        sync_weights(
            rollout_group,
            CorruptingTransport(rank=0),
            weights,
            SyncConfig(tolerance=TOL),
            probe_prompt_ids=prompts,
            probe_response_ids=responses,
            learner_logprobs=learner_lp,
        )
    with pytest.raises(ValueError, match="probe"):
        sync_weights(rollout_group, ObjectStoreTransport(), weights, SyncConfig())
    # leave the group in sync for the next test
    ObjectStoreTransport().push(rollout_group, weights)


@pytest.mark.slow
def test_dead_worker_is_reported_then_restarted_and_refitted(
    rollout_group, learner, probe, hf_logprobs
) -> None:
    from rlvr.orchestrate import ObjectStoreTransport, RolloutWorkerError, verify_sync

    prompts, responses = probe
    # self-contained (the slow subset runs this alone): the engines hold pushed weights that differ from the
    # checkpoint on disk, so a replacement that were not refitted would fail the probe
    _perturb(learner, seed=3)
    ObjectStoreTransport().push(rollout_group, list(learner.state_dict().items()))
    learner_lp = [hf_logprobs(learner, p, r) for p, r in zip(prompts, responses)]
    budget = rollout_group.max_restarts
    rollout_group.max_restarts = 0
    rollout_group.kill_worker(0)
    with pytest.raises(RolloutWorkerError, match="rollout worker 0 died"):
        rollout_group.generate(prompts, n=1, temperature=1.0, max_tokens=4, seed=0)
    rollout_group.max_restarts = budget
    # the replacement is refitted with the last full push before serving, so the probe still matches
    out = rollout_group.generate(prompts, n=1, temperature=1.0, max_tokens=4, seed=0)
    assert len(out) == 2 and rollout_group.restarts[0] == 1
    assert max(verify_sync(rollout_group, prompts, responses, learner_lp, TOL)) < TOL
    assert rollout_group.health()[0]["weight_version"] == 1  # fresh engine + one refit
