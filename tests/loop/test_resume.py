"""Resume is exact: N steps straight == k steps, stop, resume, N-k steps (weights, metrics, data order, LR).

The LR schedule (linear warm-up then linear decay) changes at every optimizer update, and the 10-prompt training
set with 4 prompts per step crosses an epoch boundary at step 3, after the resume.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration

VOLATILE = ("time", "throughput/", "sync/seconds")
REWARD_FILE = """
def digit_share(completion, *, answer, **row):
    return sum(ch.isdigit() for ch in completion) / max(len(completion), 1)
"""


def recipe_for(directory: Path, model: Path, async_mode: str = "off") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "digit_reward.py").write_text(REWARD_FILE)
    recipe = {
        "name": "resume",
        "device": "cpu",
        "seed": 3,
        "model": {"path": str(model)},
        "data": {"train": {"limit": 10}, "eval": {"split": "test", "limit": 4}},
        "train": {"steps": 4, "prompts_per_step": 4, "async_mode": async_mode},
        "rollout": {"samples_per_prompt": 4, "max_prompt_tokens": 64, "max_response_tokens": 16},
        "learner": {
            "num_ranks": 2,
            "zero_stage": 2,
            "lr": 1e-3,
            "updates_per_step": 2,
            "micro_batch_tokens": 256,
            "lr_schedule": {"type": "linear", "warmup_updates": 3, "min_lr_ratio": 0.1},
        },
        "algorithm": {"loss": {"name": "ppo_clip", "eps_high": 0.28}},
        "rewards": {"terms": [{"fn": "digit_reward.py:digit_share"}]},
        "eval": {"every_steps": 2, "at_start": False},
        "checkpoint": {"every_steps": 1, "keep_last": 2},
        "logging": {"run_dir": str(directory / "run"), "tensorboard": False},
        "resources": {"cpus_per_learner": 0.5},
    }
    path = directory / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def train(recipe: Path, *args: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "rlvr.cli", "train", str(recipe), *args],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=recipe.parent,
    )
    assert out.returncode == 0, out.stderr[-4000:]


def train_until_sigterm(recipe: Path, after_step: int) -> int:
    """`rlvr train`, sent a real SIGTERM once metrics.jsonl shows step `after_step` done; returns the step the
    run stopped at (it finishes the step in progress and checkpoints it)."""
    metrics = recipe.parent / "run" / "metrics.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "rlvr.cli", "train", str(recipe)],
        cwd=recipe.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 900
    while not (metrics.exists() and len(metrics.read_text().splitlines()) >= after_step):
        assert proc.poll() is None and time.time() < deadline, f"the run never finished step {after_step}"
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-4000:]
    return len(metrics.read_text().splitlines())


def stable_metrics(run_dir: Path) -> list[dict]:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line]
    return [{k: v for k, v in r.items() if not k.startswith(VOLATILE)} for r in records]


@pytest.mark.parametrize("async_mode", ["off", pytest.param("one_step_off", marks=pytest.mark.slow)])
def test_resume_equals_uninterrupted_run(tmp_path, random_model, async_mode):
    """In async mode the batch in flight at the stop is part of the checkpoint, so nothing is lost or redone."""
    from safetensors.torch import load_file

    straight = recipe_for(tmp_path / "straight", random_model, async_mode)
    train(straight)

    resumed = recipe_for(tmp_path / "resumed", random_model, async_mode)
    stopped_at = train_until_sigterm(resumed, after_step=2)
    assert stopped_at < 4, "SIGTERM must stop the run before its last step for this test to mean anything"
    ckpt = tmp_path / "resumed" / "run" / "checkpoints"
    assert (ckpt / "latest").read_text().strip() == f"step_{stopped_at:06d}"
    train(resumed, "--resume", "auto")

    a, b = stable_metrics(tmp_path / "straight" / "run"), stable_metrics(tmp_path / "resumed" / "run")
    assert [r["step"] for r in b] == [1, 2, 3, 4]
    assert a == b
    lrs = [r["learner/lr"] for r in a]
    assert len(set(lrs)) == len(lrs), "the LR must change every step for this test to mean anything"
    wa = load_file(tmp_path / "straight/run/checkpoints/step_000004/hf/model.safetensors")
    wb = load_file(tmp_path / "resumed/run/checkpoints/step_000004/hf/model.safetensors")
    assert max((wa[k] - wb[k]).abs().max().item() for k in wa) == 0.0


def test_sigkill_during_checkpoint_write_resumes_from_previous(tmp_path, random_model):
    """The run gets a checkpoint manager (passed in by `train_injected.py`) that stalls after writing step 2."""
    recipe = recipe_for(tmp_path / "crash", random_model)
    ckpt = tmp_path / "crash" / "run" / "checkpoints"
    injected = Path(__file__).with_name("train_injected.py")
    proc = subprocess.Popen(
        [sys.executable, str(injected), str(recipe), "--pause-checkpoint-at", "2"],
        cwd=recipe.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 600
        while not (ckpt / "PAUSED-2").exists():
            assert proc.poll() is None and time.time() < deadline, (
                "the run never reached the step-2 checkpoint"
            )
            time.sleep(1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # driver, Ray and every actor, mid-write
        proc.wait(timeout=60)
    assert list(ckpt.glob(".tmp-step_000002-*")), "the half-written checkpoint should be on disk"
    from rlvr.checkpoint.manager import CheckpointManager

    assert CheckpointManager(ckpt, cleanup=False).resolve("auto").name == "step_000001"
    (ckpt / "PAUSED-2").unlink()
    train(recipe, "--resume", "auto")
    steps = [r["step"] for r in stable_metrics(tmp_path / "crash" / "run")]
    assert steps == [1, 2, 3, 4]  # step 2's record was lost with its checkpoint, dropped, and redone
    assert (ckpt / "latest").read_text().strip() == "step_000004"
    assert not list(ckpt.glob(".tmp-*"))
