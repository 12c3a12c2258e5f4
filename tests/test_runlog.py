"""The console shows real warnings only; engine chatter and everything else goes to the run's log file.

Each check runs in a child process, because routing rewires the process's stdout/stderr descriptors and its
root logger, as it does in a Ray actor (Ray's worker setup hook) or in the `rlvr train` driver.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

EMIT = """
import logging, os, sys
vllm = logging.getLogger("vllm.model_executor.model_loader.reload.layerwise")
vllm.info("Reloading weights inplace...")
vllm.warning("%s: Failed to load weights", "RotaryEmbedding")
logging.getLogger("vllm.engine.arg_utils").warning("The global random seed is set to %d.", 0)
logging.getLogger("vllm.core").warning("KV cache is full: preempting requests")
logging.getLogger("rlvr.orchestrate").warning("rollout worker 0 restarted")
logging.getLogger("rlvr.orchestrate").info("sync took 0.1 s")
logging.getLogger("ray").info("Started a local Ray instance.")
logging.getLogger("py.warnings").warning(
    "/x/site-packages/vllm/a.py:1: FutureWarning: `torch.distributed.reduce_op` is deprecated")
print("raw print from a library")
sys.stdout.flush()
os.write(2, b"C-level write to fd 2\\n")
"""


def run_child(setup: str, tmp_path: Path) -> tuple[str, str]:
    code = textwrap.dedent(setup) + EMIT
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    return out.stdout + out.stderr, (tmp_path / "run.log").read_text()


def assert_split(console: str, log: str) -> None:
    assert "KV cache is full" in console and "rollout worker 0 restarted" in console  # real warnings
    for chatter in (
        "Failed to load weights",
        "global random seed",
        "Reloading weights",
        "sync took",
        "Started a local Ray",
        "reduce_op",
        "raw print",
        "C-level write",
    ):
        assert chatter not in console, (chatter, console)
        assert chatter in log, (chatter, log)


def test_actor_output_goes_to_the_log_and_real_warnings_to_the_console(tmp_path):
    console, log = run_child(
        f"""
        import logging
        logging.getLogger("ray").addHandler(logging.StreamHandler())  # as `import ray` does
        from rlvr.runlog import route_worker_output
        route_worker_output({str(tmp_path / "run.log")!r})
        """,
        tmp_path,
    )
    assert_split(console, log)


def test_driver_console_shows_real_warnings_only(tmp_path):
    console, log = run_child(
        f"""
        import logging
        logging.getLogger("ray").addHandler(logging.StreamHandler())  # as `import ray` does
        logging.getLogger("ray").propagate = False
        from rlvr.runlog import setup_driver_logging
        setup_driver_logging({str(tmp_path)!r})
        """,
        tmp_path,
    )
    assert "KV cache is full" in console and "rollout worker 0 restarted" in console
    for chatter in (
        "Failed to load weights",
        "global random seed",
        "Reloading weights",
        "sync took",
        "Started a local Ray",
        "reduce_op",
    ):
        assert chatter not in console, (chatter, console)
        assert chatter in log, (chatter, log)
