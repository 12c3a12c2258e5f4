"""`device: cuda` with the real-model recipes on a machine without a GPU: one clear line, or past start-up.

Nothing is faked but the device check (`rlvr.devices.cuda_device_count`, the one function rlvr asks for GPUs):
- as it is here (no CUDA), `rlvr train` on a GPU recipe stops in one line naming the device, exit 2, before any
  download, Ray cluster or actor, and never with a TypeError;
- reporting 8 GPUs, every 1x8 recipe passes the start-up checks of `rlvr train` (`rlvr.preflight.check_inputs`
  with `build=True`: device, model folder, tokenizer and chat template, data, prompt lengths), builds its
  algorithm stages and the weight transport it would connect once its actors are up; the model and the datasets are local stand-ins (this machine has no hub access), so the
  overrides replace only `model.path` and the data sources;
- a 2x8 recipe on one 8-GPU machine without a Ray cluster is refused in one line instead of waiting forever.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rlvr import devices
from rlvr.config import load_recipe
from rlvr.preflight import StartupError, check_device, check_inputs

ROOT = Path(__file__).resolve().parents[1]
GPU_RECIPES = sorted((ROOT / "recipes" / "gpu").glob("*_1x8.yaml"))
IDS = [p.stem for p in GPU_RECIPES]


def _cuda_here() -> bool:
    return devices.cuda_device_count() > 0


@pytest.fixture(scope="module")
def local_inputs(tmp_path_factory) -> dict[str, str]:
    """A model folder (the tiny tokenizer and a config: the checks load no weights) and local GSM8K/MATH rows."""
    from rlvr.tiny.tokenizer import save_tokenizer

    root = tmp_path_factory.mktemp("inputs")
    model = root / "model"
    save_tokenizer(model)
    (model / "config.json").write_text(
        json.dumps({"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"]})
    )
    gsm8k, math = root / "gsm8k.jsonl", root / "math.jsonl"
    rows = range(300)  # more than any recipe's train.prompts_per_step (256)
    gsm8k.write_text(
        "".join(json.dumps({"question": f"{i}+1?", "answer": f"#### {i + 1}"}) + "\n" for i in rows)
    )
    math.write_text(
        "".join(json.dumps({"problem": f"{i}+1?", "solution": f"\\boxed{{{i + 1}}}"}) + "\n" for i in rows)
    )
    return {"model": str(model), "gsm8k": str(gsm8k), "math": str(math)}


def _local_overrides(path: Path, inputs: dict[str, str]) -> list[str]:
    data = inputs["gsm8k"] if "gsm8k" in path.stem else inputs["math"]
    return [f"model.path={inputs['model']}", f"data.train.source={data}", f"data.eval.source={data}"]


def test_every_gpu_recipe_is_checked_here():
    assert {p.stem.rsplit("_", 2)[0] for p in GPU_RECIPES} >= {
        "grpo",
        "drpo",
        "lens",
        "clip_cov",
        "kl_cov",
        "erc",
    }


@pytest.mark.skipif(_cuda_here(), reason="this machine has a CUDA device: the refusal cannot happen")
def test_rlvr_train_refuses_cuda_recipe_in_one_line(tmp_path):
    recipe = ROOT / "recipes" / "gpu" / "grpo_gsm8k_1x8.yaml"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RLVR_PROGRESS": "0"}
    proc = subprocess.run(
        [sys.executable, "-m", "rlvr.cli", "train", str(recipe), f"logging.run_dir={tmp_path / 'run'}"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "TypeError" not in proc.stderr, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("  - ")]
    assert len(errors) == 1, proc.stderr[-3000:]
    assert "device: cuda, but this machine has no usable CUDA device (torch " in errors[0]
    assert "rlvr launch slurm|ray" in errors[0]
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize("path", GPU_RECIPES, ids=IDS)
def test_gpu_recipe_passes_startup_checks_with_gpus(path: Path, local_inputs, monkeypatch):
    from rlvr.stages import AlgorithmStages

    monkeypatch.setattr(devices, "cuda_device_count", lambda: 8)
    recipe, _ = load_recipe(path, _local_overrides(path, local_inputs))
    assert recipe.device == "cuda" and recipe.model.resolved_dtype("cuda") == "bfloat16"
    inputs = check_inputs(recipe, path.parent)
    assert inputs is not None and inputs.model_path == local_inputs["model"]
    assert len(inputs.train_prompt_ids) == 300 and len(inputs.eval_prompt_ids) == 300
    assert max(map(len, inputs.train_prompt_ids)) <= recipe.rollout.max_prompt_tokens
    AlgorithmStages(recipe)
    # The weight transport the run builds once its actors are up (the collective one on CUDA: NCCL from
    # learner rank 0); it must construct from the recipe alone, its group forms in `connect`.
    from rlvr.orchestrate.weight_sync import make_transport

    assert make_transport("cuda", recipe.rollout.sync.transport).name == "collective"


def test_2x8_recipe_on_one_machine_is_refused(local_inputs, monkeypatch):
    path = ROOT / "recipes" / "gpu" / "grpo_gsm8k_2x8.yaml"
    monkeypatch.setattr(devices, "cuda_device_count", lambda: 8)
    recipe, _ = load_recipe(path, _local_overrides(path, local_inputs))
    with pytest.raises(StartupError) as err:
        check_inputs(recipe, path.parent)
    message = str(err.value)
    assert "= 16 GPUs, but this machine has 8" in message and "resources.ray_address" in message
    assert "\n" not in message
    # Joined to a cluster (what `rlvr launch` renders), the same recipe is the cluster's business.
    joined, _ = load_recipe(path, [*_local_overrides(path, local_inputs), "resources.ray_address=auto"])
    assert check_device(joined) == "cuda"
    # ... and the driver joining it may run on a node without a GPU (a CPU head node or login node)
    assert check_device(joined, device_count=lambda: 0) == "cuda"


@pytest.mark.parametrize(
    ("overrides", "gpus", "expected"),
    [
        (["device=cuda", "resources.gpus_per_learner=1"], 0, "no usable CUDA device"),
        (["device=auto", "resources.gpus_per_learner=1"], 0, "device: auto runs on cpu here"),
        (["device=cuda"], 8, "resources.gpus_per_learner=0 on device: cuda"),
        (
            ["device=cuda", "resources.gpus_per_learner=1", "resources.gpus_per_rollout_worker=0"],
            8,
            "rollout",
        ),
        (
            [
                "device=cuda",
                "resources.placement=colocated",
                "resources.gpus_per_learner=0.5",
                "resources.gpus_per_rollout_worker=0.5",
            ],
            1,
            "resources.placement: colocated on device: cuda: .* NCCL refuses two processes",
        ),
        (
            ["device=cuda", "resources.gpus_per_learner=1", "resources.gpus_per_rollout_worker=0.5"],
            1,
            "resources.gpus_per_rollout_worker=0.5 on device: cuda: NCCL",
        ),
    ],
)
def test_device_refusals_name_the_key(overrides, gpus, expected):
    recipe, _ = load_recipe(ROOT / "recipes" / "quickstart.yaml", overrides)
    with pytest.raises(StartupError, match=expected):
        check_device(recipe, device_count=lambda: gpus)


def test_auto_follows_the_machine():
    recipe, _ = load_recipe(ROOT / "recipes" / "quickstart.yaml", ["device=auto"])
    assert check_device(recipe, device_count=lambda: 0) == "cpu"
    gpu, _ = load_recipe(
        ROOT / "recipes" / "quickstart.yaml",
        ["device=auto", "resources.gpus_per_learner=1", "resources.gpus_per_rollout_worker=1"],
    )
    assert check_device(gpu, device_count=lambda: 2) == "cuda"
