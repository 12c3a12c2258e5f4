"""The collective transport on one node: a real DeepSpeed learner rank 0 broadcasts over gloo into a real
multiprocess vLLM rollout worker; every probe passes, a corrupted push is caught."""

from __future__ import annotations

import os

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOL = 1e-4
BUCKET_BYTES = 256 * 2**10  # several buckets for the ~4 MB tiny model


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """The learner's model and a different one for the rollout engine, so only a push makes them agree."""
    from rlvr.tiny.model import init_random_model

    root = tmp_path_factory.mktemp("collective")
    return str(init_random_model(root / "learner", seed=0)), str(init_random_model(root / "rollout", seed=1))


@pytest.fixture(scope="module")
def actors(models):
    from rlvr.config.rollout import RolloutConfig
    from rlvr.config.sections import LearnerConfig
    from rlvr.orchestrate import RolloutGroup, init_ray, shutdown_ray
    from rlvr.orchestrate.learner_group import LearnerGroup

    saved = os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING")
    # The engine core in its own process: what the object store cannot reach and the collective must.
    init_ray(device="cpu", num_cpus=2, env_vars={"VLLM_ENABLE_V1_MULTIPROCESSING": "1"})
    try:
        learners = LearnerGroup(models[0], LearnerConfig(zero_stage=0), seed=0, device="cpu", num_cpus=1)
        cfg = RolloutConfig(
            max_prompt_tokens=32, max_response_tokens=32, kv_cache_memory_mb=32, num_workers=1
        )
        rollout = RolloutGroup(models[1], cfg, seed=0, device="cpu", start_timeout_s=300, dtype="float32")
        yield learners, rollout
        rollout.shutdown()
        learners.shutdown()
    finally:
        shutdown_ray()
        if saved is None:
            os.environ.pop("VLLM_ENABLE_V1_MULTIPROCESSING", None)
        else:
            os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = saved


def probe_delta(learners, rollout, probe):
    from rlvr.orchestrate import verify_sync

    learner_lp = learners.probe(*probe)
    return verify_sync(rollout, *probe, learner_lp, TOL)


def test_collective_push_moves_learner_weights_into_a_multiprocess_engine(actors, models) -> None:
    from rlvr.orchestrate import CollectiveTransport, WeightSyncError, make_transport

    learners, rollout = actors
    probe = ([[1, 5, 9, 14, 3], [7, 7, 2]], [[4, 8, 15, 16], [23, 42]])
    engine_pid = rollout.health()[0]["pid"]
    with pytest.raises(WeightSyncError, match="worker 0"):  # different models before the first push
        probe_delta(learners, rollout, probe)

    assert isinstance(make_transport("cpu"), CollectiveTransport)  # auto: a multiprocess engine
    transport = CollectiveTransport("cpu", bucket_bytes=BUCKET_BYTES)
    transport.connect(rollout, learners)
    for push in range(2):
        stats = transport.push(rollout, learners)
        deltas = probe_delta(learners, rollout, probe)
        print(
            f"push {push}: {stats.num_bytes / 2**20:.2f} MiB, {stats.num_tensors} tensors in "
            f"{stats.seconds * 1e3:.0f} ms (learner gather+send {stats.put_seconds * 1e3:.0f} ms, "
            f"engine {stats.worker_seconds[0] * 1e3:.0f} ms); max |Δlogprob| {max(deltas):.2g}"
        )
        assert max(deltas) < TOL
    health = rollout.health()[0]
    assert health["weight_version"] == 2 and health["pid"] == engine_pid
    from safetensors.torch import load_file

    weights = load_file(os.path.join(models[0], "model.safetensors"))
    assert stats.num_tensors >= len(weights)
    assert stats.num_bytes >= sum(t.numel() * t.element_size() for t in weights.values())


class CorruptingTransport:
    """Mixin for the collective transport: learner rank 0 perturbs one tensor before sending it."""

    def outgoing(self):
        from rlvr.orchestrate.rollout_worker import corrupt_one_tensor

        # A lambda travels by value to the learner process (a function of this module would not import there).
        return lambda named: corrupt_one_tensor(named)[0]


def test_corrupted_collective_push_is_caught_by_the_probe(actors) -> None:
    from rlvr.orchestrate import CollectiveTransport, WeightSyncError

    class Corrupting(CorruptingTransport, CollectiveTransport):
        pass

    learners, rollout = actors
    probe = ([[1, 5, 9, 14, 3], [7, 7, 2]], [[4, 8, 15, 16], [23, 42]])
    Corrupting("cpu", bucket_bytes=BUCKET_BYTES).push(rollout, learners)  # connects on its first push
    with pytest.raises(WeightSyncError, match=r"rollout worker 0: max \|Δlogprob\|") as err:
        probe_delta(learners, rollout, probe)
    print(err.value)
    CollectiveTransport("cpu", bucket_bytes=BUCKET_BYTES).push(rollout, learners)  # a clean push repairs it
    assert max(probe_delta(learners, rollout, probe)) < TOL


def test_replaced_worker_is_refitted_through_a_new_group(actors) -> None:
    from rlvr.orchestrate import CollectiveTransport

    learners, rollout = actors
    probe = ([[1, 5, 9, 14, 3], [7, 7, 2]], [[4, 8, 15, 16], [23, 42]])
    transport = CollectiveTransport("cpu", bucket_bytes=BUCKET_BYTES)
    transport.push(rollout, learners)
    old_pid = rollout.health()[0]["pid"]
    rollout.kill_worker(0)
    # The next call finds the worker dead, starts a replacement (from the rollout model, not the learner's)
    # and the transport refits it: a new group with the replacement, then a full push.
    health = rollout.health()[0]
    assert health["pid"] != old_pid and rollout.restarts == [1]
    assert health["weight_version"] == 1
    assert max(probe_delta(learners, rollout, probe)) < TOL
    transport.push(rollout, learners)  # the new group carries the next push too
    assert max(probe_delta(learners, rollout, probe)) < TOL
