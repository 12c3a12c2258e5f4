"""A rollout worker that crashes (SIGKILL) or hangs (SIGSTOP) in the middle of generation, in a real run.

A crash: the worker is replaced and refitted, its share of the step generated again; the run finishes with
every step complete and the same step metrics as an undisturbed run. A hang: reported naming the worker once
the call passes `rollout.call_timeout_s`, then the step is retried once on a restarted worker; if the retry
hangs too, the run stops with one line naming the worker, exit code 2, `latest` naming the last complete
checkpoint. No process of the run is left in any case.
"""

from __future__ import annotations

import os
import signal

import pytest
from train_harness import (
    SAME_AS_UNDISTURBED,
    assert_every_step_complete,
    checkpoint_dirs,
    latest_checkpoint,
)

GENERATING = "ray::RolloutWorker.generate"
CALL_TIMEOUT_S = 30  # an undisturbed step generates in well under 10 s here


def _assert_same_as_undisturbed(metrics, undisturbed) -> None:
    for got, want in zip(metrics, undisturbed, strict=True):
        for key in SAME_AS_UNDISTURBED:
            assert got[key] == pytest.approx(want[key], rel=1e-6), (got["step"], key)


@pytest.mark.integration
@pytest.mark.slow
def test_rollout_worker_killed_mid_generation_loses_no_prompt(train_process, undisturbed_metrics):
    run = train_process("run")
    run.wait_step_line(1)
    victim = run.wait_for("step 2 generation", lambda: run.actor(GENERATING))
    os.kill(victim, signal.SIGKILL)
    assert run.finish() == 0, run.console[-3000:]
    assert "rollout worker 0 died during generate" in run.console, run.console[-3000:]
    assert "Traceback" not in run.console
    metrics = run.metrics()
    assert_every_step_complete(metrics)
    _assert_same_as_undisturbed(metrics, undisturbed_metrics)
    assert latest_checkpoint(run.run_dir) == "step_000003"
    assert not run.leftovers()


@pytest.mark.integration
@pytest.mark.slow
def test_hung_rollout_call_is_retried_once_on_a_restarted_worker(train_process, undisturbed_metrics):
    run = train_process("run", f"rollout.call_timeout_s={CALL_TIMEOUT_S}")
    run.wait_step_line(1)
    hung = run.wait_for("step 2 generation", lambda: run.actor(GENERATING))
    os.kill(hung, signal.SIGSTOP)
    assert run.finish() == 0, run.console[-3000:]
    reported = f"rollout worker 0 did not finish generate within {CALL_TIMEOUT_S} s (rollout.call_timeout_s"
    assert reported in run.console, run.console[-3000:]
    assert "restarting it and retrying" in run.console
    metrics = run.metrics()
    assert_every_step_complete(metrics)
    _assert_same_as_undisturbed(metrics, undisturbed_metrics)
    assert not run.leftovers()  # the stopped worker was killed when it was replaced


@pytest.mark.integration
@pytest.mark.slow
def test_rollout_call_that_hangs_again_after_the_retry_stops_the_run(train_process):
    run = train_process("run", f"rollout.call_timeout_s={CALL_TIMEOUT_S}")
    run.wait_step_line(1)
    first = run.wait_for("step 2 generation", lambda: run.actor(GENERATING))
    os.kill(first, signal.SIGSTOP)
    retry = run.wait_for("the retried generation", lambda: run.actor(GENERATING, exclude={first}))
    os.kill(retry, signal.SIGSTOP)
    assert run.finish() == 2, run.console[-3000:]
    error = run.console[run.console.index("error:") :].strip().splitlines()
    assert error == [
        "error:",
        f"  - rollout worker 0 did not finish generate within {CALL_TIMEOUT_S} s (rollout.call_timeout_s; "
        "hung or overloaded), again on a restarted worker; giving up",
    ], run.console[-3000:]
    assert "Traceback" not in run.console
    assert "Traceback" in (run.run_dir / "run.log").read_text()  # the whole story stays in the log
    assert latest_checkpoint(run.run_dir) == "step_000001"
    assert checkpoint_dirs(run.run_dir) == ["step_000001"]
    assert [m["step"] for m in run.metrics()] == [1]
    assert not run.leftovers()


@pytest.mark.integration
@pytest.mark.slow
def test_hung_prefetch_is_retried_in_one_step_off_mode(train_process):
    """The next step's batch, generated in the background, waits for the retry instead of its own deadline."""
    run = train_process("run", f"rollout.call_timeout_s={CALL_TIMEOUT_S}", "train.async_mode=one_step_off")
    run.wait_step_line(1)
    hung = run.wait_for("a prefetch", lambda: run.actor(GENERATING))
    os.kill(hung, signal.SIGSTOP)
    assert run.finish() == 0, run.console[-3000:]
    assert "rollout worker 0 did not finish generate within" in run.console, run.console[-3000:]
    assert "Traceback" not in run.console
    assert_every_step_complete(run.metrics())
    assert not run.leftovers()
