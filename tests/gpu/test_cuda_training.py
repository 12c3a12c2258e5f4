"""The whole stack on CUDA: two GRPO steps with the NCCL weight push (disaggregated: learner and rollout worker on
a GPU each, so 2 GPUs), the bf16 sync probe, and colocated placement refused at start-up in one line (NCCL cannot
put learner rank 0 and an engine that share a GPU into one group). Marked `gpu`: skipped without a CUDA device
(tests/conftest.py); scripts/gpu_check.sh runs them.

The model is a random-init tiny Qwen2 written by `rlvr.tiny.model.init_random_model` (no hub, no build); a file
reward (the share of digits in a completion) gives every group a non-uniform reward, so the update must move
the weights.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.gpu, pytest.mark.integration]

REWARD_FILE = '''
def digit_share(completion, *, answer, **row):
    """Fraction of characters that are digits: a dense, non-uniform signal for a random model."""
    return sum(ch.isdigit() for ch in completion) / max(len(completion), 1)
'''


def cuda_devices() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    from rlvr.tiny.model import init_random_model

    return init_random_model(tmp_path_factory.mktemp("model") / "tiny", seed=0)


def write_recipe(directory: Path, model: Path, placement: str, **sections) -> Path:
    """A 2-step GRPO run on CUDA; colocated actors share GPU 0 (half each), disaggregated ones get a GPU each."""
    shared = placement == "colocated"
    (directory / "digit_reward.py").write_text(REWARD_FILE)
    recipe = {
        "name": f"gpu_{placement}",
        "device": "cuda",
        "seed": 1,
        "model": {"path": str(model), "dtype": "bfloat16"},
        "data": {"train": {"limit": 64}, "eval": {"split": "test", "limit": 8}},
        "train": {"steps": 2, "prompts_per_step": 4},
        "rollout": {
            "samples_per_prompt": 4,
            "max_prompt_tokens": 64,
            "max_response_tokens": 24,
            "gpu_memory_utilization": 0.3 if shared else 0.5,
        },
        "learner": {"num_ranks": 1, "zero_stage": 2, "lr": 1e-3, "micro_batch_tokens": 256},
        "rewards": {"terms": [{"fn": "digit_reward.py:digit_share"}]},
        "eval": {"every_steps": 2, "at_start": False},
        "checkpoint": {"every_steps": 2},
        "logging": {"run_dir": str(directory / "run"), "tensorboard": False},
        "resources": {
            "placement": placement,
            "gpus_per_learner": 0.5 if shared else 1,
            "gpus_per_rollout_worker": 0.5 if shared else 1,
        },
    }
    for key, value in sections.items():
        recipe[key] = {**recipe.get(key, {}), **value}
    path = directory / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def rlvr_train(recipe: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rlvr.cli", "train", str(recipe)],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        cwd=recipe.parent,
    )


def read_metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]


needs_two_gpus = pytest.mark.skipif(
    "cuda_devices() < 2",
    reason="a learner and a rollout worker on a GPU each: NCCL cannot join two on one GPU",
)


@needs_two_gpus
def test_two_grpo_steps_on_cuda(tmp_path: Path, model: Path):
    import torch
    from safetensors.torch import load_file

    out = rlvr_train(write_recipe(tmp_path, model, "disaggregated"))
    assert out.returncode == 0, out.stderr[-4000:]
    assert "Traceback" not in out.stderr
    run = tmp_path / "run"
    records = read_metrics(run)
    assert [r["step"] for r in records] == [1, 2]
    for r in records:
        assert math.isfinite(r["learner/policy_loss"]) and math.isfinite(r["learner/grad_norm"])
        assert r["sync/max_abs_logprob_delta"] < 5e-2  # bf16 tolerance: every push verified
        assert r["sync/bytes"] > 0
    assert "eval/accuracy" in records[-1]
    before = load_file(model / "model.safetensors")
    after = load_file(run / "checkpoints" / "step_000002" / "hf" / "model.safetensors")
    changed = max(
        (after[k].to(torch.bfloat16).float() - before[k].to(torch.bfloat16).float()).abs().max().item()
        for k in before
    )
    assert changed > 0, "two updates on CUDA did not change the weights"


@needs_two_gpus
def test_bf16_sync_probe_is_within_its_tolerance_and_catches_a_bad_tolerance(tmp_path: Path, model: Path):
    """bf16 learner and bf16 vLLM agree within 5e-2 at every push; their kernels differ, so a fp32-grade
    tolerance (1e-6) stops the run at the start-up sync with the worker and the delta named."""
    placement = "disaggregated"
    ok = tmp_path / "ok"
    ok.mkdir()
    out = rlvr_train(write_recipe(ok, model, placement, train={"steps": 1}))
    assert out.returncode == 0, out.stderr[-4000:]
    (record,) = read_metrics(ok / "run")
    assert 0 <= record["sync/max_abs_logprob_delta"] < 5e-2
    strict = tmp_path / "strict"
    strict.mkdir()
    out = rlvr_train(
        write_recipe(strict, model, placement, train={"steps": 1}, rollout={"sync": {"tolerance": 1e-6}})
    )
    assert out.returncode == 2, out.stderr[-4000:]
    assert "weight sync verification failed on rollout worker 0" in out.stderr
    assert "Traceback" not in out.stderr


def test_colocated_on_cuda_is_refused_in_one_line(tmp_path: Path, model: Path):
    out = rlvr_train(write_recipe(tmp_path, model, "colocated"))
    assert out.returncode == 2, out.stderr[-4000:]
    errors = [line for line in out.stderr.splitlines() if line.startswith("  - ")]
    assert len(errors) == 1 and "resources.placement: colocated on device: cuda" in errors[0], out.stderr[
        -4000:
    ]
    assert "Traceback" not in out.stderr
