"""The sandboxed pool under attack: hangs, memory hogs, crashes, injected code, huge inputs."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from rlvr.reward.sandbox import VerifierPool, VerifyItem
from rlvr.reward.types import RewardError

FAULTS = str(Path(__file__).with_name("fault_rewards.py"))
TIMEOUT_S = 2.0

INJECTIONS = [
    "__import__('os').system('touch PWNED')",
    "exec(\"open('PWNED','w')\")",
    'eval(\'__import__("os").system("touch PWNED")\')',
    "lambda: __import__('os').system('touch PWNED')",
    "x; import os; os.system('touch PWNED')",
]
ADVERSARIAL = [
    "\\boxed{9^{9^{9^{9}}}}",
    "\\boxed{9**9**9**9}",
    "\\boxed{10^{10^{10}}}",
    "\\boxed{(10^{1000000})!}",
    "\\boxed{" + "{" * 5000 + "1" + "}" * 5000 + "}",
    "\\boxed{" + "\\frac{1}{" * 40 + "2" + "}" * 40 + "}",
    "\\boxed{" + "(" * 300 + "1" + ")" * 300 + "}",
    "x" * (1 << 20) + "\\boxed{7}",
    "\\boxed{7}" + "\\boxed{" * 100_000,
    "\\boxed{1\x002}\x00\x00",
    "\x00" * 1000,
    *[f"\\boxed{{{s}}}" for s in INJECTIONS],
    *[f"#### {s}" for s in INJECTIONS],
]


@pytest.fixture(scope="module")
def jail(tmp_path_factory: pytest.TempPathFactory):
    """A pool whose workers were started inside an empty temporary cwd."""
    cwd = os.getcwd()
    workdir = tmp_path_factory.mktemp("jail")
    os.chdir(workdir)
    try:
        with VerifierPool(
            workers=2, timeout_s=TIMEOUT_S, memory_mb=512, max_error_fraction=1.0, preload=("math", "gsm8k")
        ) as pool:
            yield pool, workdir
    finally:
        os.chdir(cwd)


@pytest.mark.parametrize("completion", ADVERSARIAL, ids=range(len(ADVERSARIAL)))
@pytest.mark.parametrize("fn", ["math", "gsm8k"])
def test_adversarial_input_is_bounded_and_harmless(jail, completion: str, fn: str) -> None:
    pool, workdir = jail
    pool.wait_ready()
    start = time.monotonic()
    (result,) = pool.score([VerifyItem(completion, "7", fn)])
    assert time.monotonic() - start < TIMEOUT_S + 1.0
    assert not result.correct or completion.endswith("\\boxed{7}")
    assert list(Path(workdir).iterdir()) == []
    assert not Path("PWNED").exists()
    (follow_up,) = pool.score([VerifyItem("\\boxed{7}", "7", fn)])
    assert follow_up.correct


def test_injection_in_gold_is_harmless(jail) -> None:
    pool, workdir = jail
    results = pool.score([VerifyItem("\\boxed{1}", f"\\boxed{{{s}}}") for s in INJECTIONS])
    assert not any(r.correct for r in results)
    assert list(Path(workdir).iterdir()) == []


def test_sandbox_refuses_side_effects(jail) -> None:
    pool, workdir = jail
    (result,) = pool.score([VerifyItem("x", "1", f"{FAULTS}:side_effects")])
    assert result.error is None and result.score == 0.0, result
    assert list(Path(workdir).iterdir()) == []


@pytest.mark.parametrize("fault", ["hang", "busy"])
def test_hung_reward_is_killed_and_replaced(jail, fault: str) -> None:
    pool, _ = jail
    pool.wait_ready()
    before = set(pool.worker_pids)
    start = time.monotonic()
    (result,) = pool.score([VerifyItem("x", "1", f"{FAULTS}:{fault}")])
    assert time.monotonic() - start < TIMEOUT_S + 1.0
    assert result.timed_out and not result.correct and "timed out" in result.error
    assert set(pool.worker_pids) != before
    assert pool.score([("\\boxed{3}", "3")])[0].correct


def test_memory_hog_is_an_error_not_a_crash(jail) -> None:
    pool, _ = jail
    (result,) = pool.score([VerifyItem("x", "1", f"{FAULTS}:hog")])
    assert not result.correct and result.error and "MemoryError" in result.error
    assert pool.score([("\\boxed{3}", "3")])[0].correct


def test_dead_worker_is_an_error_and_replaced(jail) -> None:
    pool, _ = jail
    results = pool.score([VerifyItem("x", "1", f"{FAULTS}:die"), ("\\boxed{3}", "3")])
    assert "exited by itself with exit code 3" in results[0].error
    assert results[1].correct
    assert pool.score([("\\boxed{4}", "4")])[0].correct


def test_math_verify_timeout_exception_is_caught(jail) -> None:
    pool, _ = jail
    (result,) = pool.score([VerifyItem("x", "1", f"{FAULTS}:mv_timeout")])
    assert "TimeoutException" in result.error and not result.timed_out


def test_too_many_failures_raise() -> None:
    # Preloaded so the file's import is not timed (this test is about counting, not about timing).
    with VerifierPool(workers=1, timeout_s=30, max_error_fraction=0.5, preload=(f"{FAULTS}:ok",)) as pool:
        items = [VerifyItem("x", "1", f"{FAULTS}:mv_timeout")] * 3 + [VerifyItem("1", "1", f"{FAULTS}:ok")]
        with pytest.raises(
            RewardError, match=r"3 of 4 items failed verification.*first error: .*TimeoutException"
        ):
            pool.score(items)
        # Below the threshold: results come back with the failure recorded.
        results = pool.score(items[2:])
        assert results[0].error and results[1].score == 1.0
        assert pool.stats["errors"] == 4


def test_results_keep_input_order(pool: VerifierPool) -> None:
    items = [(f"\\boxed{{{i}}}", str(i if i % 3 else i + 1)) for i in range(40)]
    results = pool.score(items)
    assert [r.extracted for r in results] == [str(i) for i in range(40)]
    assert [r.correct for r in results] == [bool(i % 3) for i in range(40)]


def test_closed_pool_refuses_work() -> None:
    pool = VerifierPool(workers=1, preload=())
    pool.close()
    with pytest.raises(RewardError, match="closed"):
        pool.score([("\\boxed{1}", "1")])
