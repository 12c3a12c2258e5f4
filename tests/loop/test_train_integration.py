"""The RL loop end to end on the real stack: Ray actors, vLLM rollout, 2 DeepSpeed ranks (ZeRO-2), verified sync.

A random-init tiny model cannot solve the task, so the recipe uses a custom file reward (the fraction of digits
in the completion) to give every group a non-uniform reward: the update must then move the weights.
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

pytestmark = pytest.mark.integration

REWARD_FILE = '''
def digit_share(completion, *, answer, **row):
    """Fraction of characters that are digits: a dense, non-uniform signal for a random model."""
    return sum(ch.isdigit() for ch in completion) / max(len(completion), 1)
'''


def write_recipe(directory: Path, model: Path, **overrides) -> Path:
    (directory / "digit_reward.py").write_text(REWARD_FILE)
    recipe = {
        "name": "it",
        "device": "cpu",
        "seed": 1,
        "model": {"path": str(model)},
        "data": {"train": {"limit": 64}, "eval": {"split": "test", "limit": 8}},
        "train": {"steps": 2, "prompts_per_step": 4},
        "rollout": {"samples_per_prompt": 4, "max_prompt_tokens": 64, "max_response_tokens": 24},
        "learner": {
            "num_ranks": 2,
            "zero_stage": 2,
            "lr": 1e-3,
            "updates_per_step": 2,
            "micro_batch_tokens": 256,
        },
        "rewards": {"terms": [{"fn": "digit_reward.py:digit_share"}]},
        "eval": {"every_steps": 2, "at_start": False},
        "logging": {"run_dir": str(directory / "run"), "tensorboard": True},
        "resources": {"cpus_per_learner": 0.5},
    }
    for key, value in overrides.items():
        recipe[key] = {**recipe.get(key, {}), **value} if isinstance(value, dict) else value
    path = directory / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def rlvr_train(recipe: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rlvr.cli", "train", str(recipe), *args],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, **(env or {})},
        cwd=recipe.parent,
    )


def rlvr_eval(run_dir: Path, step_dir: Path) -> dict:
    """`rlvr eval RUN_DIR` (latest checkpoint, the recipe's settings); returns the report it wrote."""
    out = subprocess.run(
        [sys.executable, "-m", "rlvr.cli", "eval", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=run_dir.parent,
    )
    assert out.returncode == 0, out.stderr[-4000:]
    return json.loads(next(step_dir.glob("eval-*/eval.json")).read_text())


def read_metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]


def test_two_steps_two_ranks_zero2(tmp_path, random_model):
    from safetensors.torch import load_file

    recipe = write_recipe(tmp_path, random_model)
    out = rlvr_train(recipe)
    assert out.returncode == 0, out.stderr[-4000:]
    run = tmp_path / "run"
    records = read_metrics(run)
    assert [r["step"] for r in records] == [1, 2]
    for r in records:
        assert math.isfinite(r["learner/policy_loss"]) and math.isfinite(r["learner/grad_norm"])
        assert r["sync/max_abs_logprob_delta"] < 1e-4  # rollout == learner after every sync
        assert r["reward/mean"] > 0
    assert "eval/accuracy" in records[-1]
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    final = run / "checkpoints" / "step_000002"
    assert (run / "checkpoints" / "latest").read_text().strip() == "step_000002"
    before = load_file(random_model / "model.safetensors")
    after = load_file(final / "hf" / "model.safetensors")
    changed = max((after[k] - before[k]).abs().max().item() for k in before)
    assert changed > 1e-6, "the policy update did not change the weights"
    # `rlvr eval` on the final checkpoint reproduces the held-out accuracy the run logged (same settings)
    report = rlvr_eval(run, final)
    assert report["metrics"]["avg@1"] == pytest.approx(records[-1]["eval/accuracy"], abs=1e-9)


def test_corrupted_sync_stops_the_run(tmp_path, random_model):
    """The test passes in a transport that corrupts rollout worker 0's copy after the start-up push."""
    recipe = write_recipe(tmp_path, random_model, train={"steps": 1, "prompts_per_step": 4})
    out = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).with_name("train_injected.py")),
            str(recipe),
            "--perturb-worker",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=recipe.parent,
    )
    assert out.returncode == 2, out.stderr[-4000:]
    assert "weight sync verification failed on rollout worker 0" in out.stderr
    assert "Traceback" not in out.stderr


def test_rlvr_eval_reproduces_the_logged_held_out_accuracy(tmp_path):
    """On the trained tiny model (non-trivial accuracy, varied lengths), `rlvr eval` on the final checkpoint
    gives the same greedy accuracy and mean length as the run's own last evaluation."""
    from rlvr.tiny.build import build_tiny

    build_tiny()  # built once per cache (in a child process), then cached
    repo = Path(__file__).resolve().parents[2]
    run = tmp_path / "run"
    overrides = [
        "train.steps=1",
        "train.prompts_per_step=4",
        "rollout.samples_per_prompt=4",
        "eval.every_steps=1",
        "eval.at_start=false",
        "eval.max_prompts=64",
        "logging.tensorboard=false",
        "logging.progress=false",
        f"logging.run_dir={run}",
    ]
    out = rlvr_train(repo / "recipes" / "quickstart.yaml", *overrides)
    assert out.returncode == 0, out.stderr[-4000:]
    logged = read_metrics(run)[-1]
    assert 0.05 < logged["eval/accuracy"] < 0.95, logged  # a check that can fail
    report = rlvr_eval(run, run / "checkpoints" / "step_000001")
    assert report["metrics"]["num_prompts"] == 64
    assert report["metrics"]["avg@1"] == pytest.approx(logged["eval/accuracy"], abs=1e-9)
    assert report["metrics"]["length/mean"] == pytest.approx(logged["eval/length/mean"], abs=1e-9)

    # the exported HF folder, decoded greedily by transformers, reaches the same accuracy as vLLM did
    export = subprocess.run(
        [sys.executable, "-m", "rlvr.cli", "export", str(run), str(tmp_path / "export")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert export.returncode == 0, export.stderr[-4000:]
    assert _hf_greedy_accuracy(tmp_path / "export", 64) == pytest.approx(report["metrics"]["avg@1"], abs=1e-9)


def _hf_greedy_accuracy(model_dir: Path, n: int) -> float:
    """Greedy accuracy of a plain transformers model on the first n held-out prompts, as the run formats them."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rewards.math import math_reward  # the recipe's default reward, as `rlvr eval` grades
    from rlvr.config import validate_dict
    from rlvr.data.loaders import load_dataset_rows
    from rlvr.data.prompts import prompt_token_ids

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    recipe, _ = validate_dict({"model": {"path": str(model_dir)}})
    rows = load_dataset_rows(recipe.data.eval, tokenizer=tok)[:n]
    correct = 0
    with torch.no_grad():
        for row in rows:
            ids = torch.tensor([prompt_token_ids(tok, row)])
            out = model.generate(ids, do_sample=False, max_new_tokens=64, eos_token_id=tok.eos_token_id)
            text = tok.decode(out[0, ids.shape[1] :], skip_special_tokens=True)
            correct += bool(math_reward(text, **row).correct)
    return correct / len(rows)
