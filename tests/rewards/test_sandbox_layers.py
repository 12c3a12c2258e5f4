"""Each protection layer of the reward sandbox on its own, reached by a hostile item, and counted.

The math items use a non-integer gold, so the prediction is not settled by the integer fast path and
goes on to the symbolic (Math-Verify) tier. Layers, innermost first:

1. the math reward's filter of pathological answers (after normalisation): `guard == "filter"`;
2. Math-Verify's own timeout: `guard == "verify_timeout"`;
3. the memory limit: a `MemoryError` result from the worker, which keeps serving;
4. the pool's wall-clock kill: `timed_out`, the worker is replaced;
5. the replacement of a worker that died or was killed from outside, with the right cause named.

Each test checks the verdict is wrong, which layer stopped the item, and the metric that counts it.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rlvr.reward.sandbox import VerifierPool, death_message
from rlvr.reward.scorer import RewardScorer, ScorerTerm

FAULTS = str(Path(__file__).with_name("fault_rewards.py"))
POOL_TIMEOUT_S = 6.0
GOLD = "\\frac{1}{2}"
# Sympy works on this for about 30 s on a loaded 2-core machine (measured): far past the limits here, and
# modest in memory (a 5-variable power is not: under the 512 MB limit it returns "no match" within seconds).
SLOW_SYMBOLIC = "\\boxed{(x+y+z)^{999}}"
FILTERED = [
    "1e999999999",  # becomes 1\times10^{999999999} only after normalisation
    "(10^{10})!",
    "((10!)!)!",
    "10^{10}!",
    "((3^{999})^{999})^{999}",
    "9^{9^{9}}",
    "\\frac{1}{2}" + "+0" * 120,
]


@pytest.fixture(scope="module")
def layered() -> Iterator[VerifierPool]:
    with VerifierPool(
        workers=2,
        timeout_s=POOL_TIMEOUT_S,
        memory_mb=512,
        max_error_fraction=1.0,
        preload=("math", f"{FAULTS}:hog", f"{FAULTS}:hang"),
    ) as pool:
        pool.wait_ready()
        yield pool


def _score(pool: VerifierPool, completions: list[str], fn: str = "math", **kwargs: object):
    scorer = RewardScorer([ScorerTerm(fn, kwargs=dict(kwargs))], pool=pool)
    return scorer.score(completions, [{"answer": GOLD}] * len(completions))


def test_filter_stops_pathological_answers_before_sympy(layered: VerifierPool) -> None:
    before = dict(layered.stats)
    start = time.monotonic()
    results, metrics = _score(layered, [f"\\boxed{{{a}}}" for a in FILTERED])
    assert time.monotonic() - start < POOL_TIMEOUT_S
    assert [r.guard for r in results] == ["filter"] * len(FILTERED)
    assert not any(r.correct or r.timed_out or r.error for r in results)
    assert metrics["reward/filtered"] == len(FILTERED)
    assert layered.stats["filtered"] - before["filtered"] == len(FILTERED)
    assert layered.stats["restarts"] == before["restarts"]


def test_math_verify_timeout_is_counted_not_silent(layered: VerifierPool) -> None:
    pids = set(layered.worker_pids)
    results, metrics = _score(layered, [SLOW_SYMBOLIC], timeout_s=1)
    (r,) = results
    assert r.guard == "verify_timeout" and not r.correct and not r.timed_out and r.error is None
    assert metrics["reward/verify_timeouts"] == 1 and metrics["reward/timeouts"] == 0
    assert set(layered.worker_pids) == pids  # the worker stopped itself: no kill needed


def test_wall_clock_kill_replaces_the_worker(layered: VerifierPool) -> None:
    before = dict(layered.stats)
    pids = set(layered.worker_pids)
    start = time.monotonic()
    # Math-Verify's own timeout set past the pool's: only the wall-clock kill can stop this item.
    results, metrics = _score(layered, [SLOW_SYMBOLIC], timeout_s=600)
    assert POOL_TIMEOUT_S - 0.5 < time.monotonic() - start < POOL_TIMEOUT_S + 3.0
    (r,) = results
    assert r.timed_out and not r.correct and "timed out" in r.error and "worker killed" in r.error
    assert metrics["reward/timeouts"] == 1
    assert layered.stats["restarts"] == before["restarts"] + 1
    assert set(layered.worker_pids) != pids
    assert _score(layered, ["\\boxed{0.5}"])[0][0].correct  # the pool keeps serving


def test_memory_limit_is_an_error_result(layered: VerifierPool) -> None:
    pids = set(layered.worker_pids)
    results, metrics = _score(layered, ["x"], fn=f"{FAULTS}:hog")
    (r,) = results
    assert not r.correct and "MemoryError" in r.error and not r.timed_out
    assert metrics["reward/errors"] == 1
    assert set(layered.worker_pids) == pids  # RLIMIT_AS refused the allocation; the worker lives on
    assert _score(layered, ["\\boxed{\\frac{2}{4}}"])[0][0].correct


def test_worker_killed_from_outside_is_replaced_and_named(layered: VerifierPool) -> None:
    before = dict(layered.stats)
    pids = set(layered.worker_pids)

    def kill_busy_worker() -> None:
        time.sleep(1.0)  # the item is dispatched and `hang` is running
        busy = [w.proc.pid for w in layered._workers if w.task is not None]
        os.kill(busy[0], signal.SIGKILL)

    killer = threading.Thread(target=kill_busy_worker)
    killer.start()
    results, metrics = _score(layered, ["x"], fn=f"{FAULTS}:hang")
    killer.join()
    (r,) = results
    assert not r.correct and not r.timed_out
    assert "killed by SIGKILL from outside the pool" in r.error, r.error
    assert "exited by itself" not in r.error
    assert metrics["reward/errors"] == 1
    assert layered.stats["restarts"] == before["restarts"] + 1
    assert len(set(layered.worker_pids) - pids) == 1
    assert _score(layered, ["\\boxed{0.5}"])[0][0].correct


def test_worker_that_exits_by_itself_is_not_blamed_on_memory(layered: VerifierPool) -> None:
    results, metrics = _score(layered, ["x"], fn=f"{FAULTS}:die")
    (r,) = results
    assert "exited by itself with exit code 3" in r.error, r.error
    assert "memory" not in r.error
    assert metrics["reward/errors"] == 1
    assert _score(layered, ["\\boxed{0.5}"])[0][0].correct


@pytest.mark.parametrize(
    ("exitcode", "says", "never"),
    [
        (3, "exited by itself with exit code 3", "memory"),
        (0, "exited by itself with exit code 0", "memory"),
        (-signal.SIGKILL, "killed by SIGKILL from outside the pool", "exited by itself"),
        (-signal.SIGSEGV, "crashed with SIGSEGV", "exited by itself"),
        (-signal.SIGABRT, "512 MB memory limit", "exited by itself"),
        (-signal.SIGTERM, "terminated by SIGTERM", "memory"),
    ],
)
def test_death_message_names_the_cause(exitcode: int, says: str, never: str) -> None:
    message = death_message(exitcode, 512)
    assert says in message and never not in message
