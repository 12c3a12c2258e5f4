"""A learner rank killed with SIGKILL in the middle of an update, in a real run, then `--resume auto`.

The run stops well within `learner.collective_timeout_s` with one line naming the rank (exit code 2, no
traceback on the console), nothing half-written is on disk (`latest` names the last complete checkpoint, no
partial step directory), no process of the run is left, and `--resume auto` continues to the last step.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
from train_harness import STEPS, assert_every_step_complete, checkpoint_dirs, latest_checkpoint

COLLECTIVE_TIMEOUT_S = 60  # an undisturbed update takes a few seconds here


@pytest.mark.integration
@pytest.mark.slow
def test_killed_learner_rank_stops_the_run_and_resume_continues(train_process):
    run = train_process("run", f"learner.collective_timeout_s={COLLECTIVE_TIMEOUT_S}")
    run.wait_step_line(1)
    rank = run.wait_for("step 2 update", lambda: run.actor("ray::_LearnerActor.update"))
    os.kill(rank, signal.SIGKILL)
    killed_at = time.monotonic()
    run.wait_for("the error line", lambda: "error:" in run.console, timeout=COLLECTIVE_TIMEOUT_S)
    assert time.monotonic() - killed_at < COLLECTIVE_TIMEOUT_S
    assert run.finish() == 2, run.console[-3000:]
    error = run.console[run.console.index("error:") :].strip().splitlines()
    assert len(error) == 2 and error[1].startswith("  - learner rank 0 died during 'update'"), error
    assert "Traceback" not in run.console
    assert latest_checkpoint(run.run_dir) == "step_000001"
    assert checkpoint_dirs(run.run_dir) == ["step_000001"]
    assert [m["step"] for m in run.metrics()] == [1]
    assert not run.leftovers()

    resumed = train_process("run", f"learner.collective_timeout_s={COLLECTIVE_TIMEOUT_S}", resume=True)
    assert resumed.finish() == 0, resumed.console[-3000:]
    assert_every_step_complete(resumed.metrics())
    assert latest_checkpoint(run.run_dir) == f"step_{STEPS:06d}"
    assert not resumed.leftovers()
