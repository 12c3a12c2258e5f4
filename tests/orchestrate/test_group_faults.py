"""Deadlines, retries and rank naming of the actor groups, with small stand-in actors on a real Ray cluster.

A stand-in rollout worker hangs (sleeps past the deadline) as often as a plan file per rank in its model
folder says, counting down across replacements, so a test decides whether the retry on a restarted worker
hangs too. A stand-in learner rank dies (``os._exit``) or hangs on command. The real stack is exercised by
the slow tests in ``tests/reliability``.
"""

from __future__ import annotations

import fcntl
import os
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", autouse=True)
def _ship_stand_ins_by_value():
    """The actors' workers cannot import this test module; its classes travel pickled by value."""
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


TIMEOUT_S = 3.0


class _HangingWorker:
    """Answers like a rollout worker; ``generate`` hangs while ``<folder>/hangs-<rank>`` is above zero."""

    def __init__(self, rank, model_path, config, seed, device, dtype=None):
        self.rank, self.plan = rank, Path(model_path) / f"hangs-{rank}"

    def ready(self):
        return {"rank": self.rank, "pid": os.getpid()}

    health = ready

    def update_weights(self, named_tensors, **kwargs):
        return {"rank": self.rank}

    def generate(self, prompt_token_ids, **kwargs):
        with open(self.plan, "r+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            left = int(f.read() or 0)
            if left > 0:
                f.seek(0)
                f.truncate()
                f.write(str(left - 1))
        if left > 0:
            time.sleep(3600)
        return [[(self.rank, tuple(p))] for p in prompt_token_ids]


class _Rank:
    def __init__(self, rank):
        self.rank = rank

    def update(self, behaviour):
        if behaviour == "die":
            os._exit(1)
        if behaviour == "hang":
            time.sleep(3600)
        return {"rank": self.rank}


def _rollout_group(folder: Path, hangs: int):
    import ray

    from rlvr.config.rollout import RolloutConfig
    from rlvr.orchestrate.group import RolloutGroup

    class Group(RolloutGroup):
        def _spawn(self, rank):
            return (
                ray.remote(_HangingWorker).options(num_cpus=0).remote(rank, self.model_path, None, 0, "cpu")
            )

    (folder / "hangs-0").write_text(str(hangs))  # worker 0 hangs, worker 1 never does
    (folder / "hangs-1").write_text("0")
    return Group(str(folder), RolloutConfig(num_workers=2, call_timeout_s=TIMEOUT_S), start_timeout_s=60)


def test_hung_rollout_call_is_retried_once_on_a_restarted_worker(ray_cluster, tmp_path, caplog):
    group = _rollout_group(tmp_path, hangs=1)
    try:
        hung_pid = group.health()[0]["pid"]
        prompts = [[1], [2], [3], [4], [5]]
        out = group.generate(prompts, n=1, temperature=1.0, max_tokens=4)
        # every prompt once, in order; worker 0's share (the first three) came from its replacement
        assert out == [[(0, (1,))], [(0, (2,))], [(0, (3,))], [(1, (4,))], [(1, (5,))]]
        assert group.restarts == [1, 0]
        assert group.health()[0]["pid"] != hung_pid
        assert "rollout worker 0 did not finish generate within 3 s (rollout.call_timeout_s" in caplog.text
        assert "restarting it and retrying (1/1)" in caplog.text
    finally:
        group.shutdown()


def test_rollout_call_that_hangs_again_names_the_worker_and_gives_up(ray_cluster, tmp_path):
    from rlvr.orchestrate import RolloutWorkerError

    group = _rollout_group(tmp_path, hangs=2)
    try:
        with pytest.raises(RolloutWorkerError) as err:
            group.generate([[1], [2]], n=1, temperature=1.0, max_tokens=4)
        assert str(err.value) == (
            "rollout worker 0 did not finish generate within 3 s (rollout.call_timeout_s; hung or "
            "overloaded), again on a restarted worker; giving up"
        )
    finally:
        group.shutdown()


def _learner_group(timeout: float):
    import ray

    from rlvr.orchestrate.learner_group import LearnerGroup

    group = LearnerGroup.__new__(LearnerGroup)  # stand-in ranks instead of DeepSpeed engines
    group.timeout = timeout
    group._submit = threading.Lock()
    group.ranks = [ray.remote(_Rank).options(num_cpus=0).remote(r) for r in range(2)]
    return group


def test_dead_learner_rank_is_named_at_once_while_its_peer_waits(ray_cluster):
    from rlvr.orchestrate.learner_group import LearnerError

    group = _learner_group(timeout=120)
    try:
        assert group._all("update", ["ok", "ok"]) == [{"rank": 0}, {"rank": 1}]
        t0 = time.monotonic()
        with pytest.raises(LearnerError) as err:
            group._all("update", ["hang", "die"])  # rank 0 waits for rank 1 as in a collective
        assert time.monotonic() - t0 < 60  # not the 120 s deadline
        message = str(err.value)
        assert message.startswith("learner rank 1 died during 'update' (") and "\n" not in message, message
    finally:
        group.shutdown()


def test_learner_deadline_names_the_ranks_still_running(ray_cluster):
    from rlvr.orchestrate.learner_group import LearnerError

    group = _learner_group(timeout=TIMEOUT_S)
    try:
        group._all("update", ["ok", "ok"], timeout=120)  # the actors have started
        with pytest.raises(LearnerError) as err:
            group._all("update", ["ok", "hang"])
        assert str(err.value) == (
            "learner rank 1 did not finish 'update' within 3 s "
            "(learner.collective_timeout_s; stuck in a collective or overloaded)"
        )
    finally:
        group.shutdown()
