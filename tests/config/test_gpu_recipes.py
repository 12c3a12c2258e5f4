"""recipes/gpu: real models on CUDA in bf16, sized for one or two 8-GPU nodes, rendered by `rlvr launch`.

Each `NAME_1x8.yaml` has a `NAME_2x8.yaml` twin that differs only in the split (twice the learner ranks and
rollout workers on two nodes) and its name, so a method's settings are written once.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from rlvr.config import load_recipe, load_recipe_dict
from rlvr.launch import plan_launch, render

ROOT = Path(__file__).resolve().parents[2]
GPU = sorted((ROOT / "recipes" / "gpu").glob("*.yaml"))
ONE_NODE = [p for p in GPU if p.stem.endswith("_1x8")]


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


@pytest.mark.parametrize("path", GPU, ids=[p.stem for p in GPU])
def test_gpu_recipe_fills_its_nodes_in_bf16(path: Path):
    recipe, _ = load_recipe(path)
    nodes = int(path.stem.rsplit("_", 1)[1].split("x")[0])
    assert recipe.name == path.stem
    assert recipe.device == "cuda" and recipe.model.dtype == "bfloat16"
    assert recipe.resources.placement == "disaggregated"
    assert recipe.rollout.sync.tolerance_for(recipe.model.resolved_dtype("cuda")) == pytest.approx(5e-2)
    plan = plan_launch(_rel(path))
    assert (plan.nodes, plan.gpus_per_node) == (nodes, 8)
    assert plan.learner_ranks * plan.gpus_per_learner == 4 * nodes
    assert plan.rollout_workers * plan.gpus_per_rollout_worker == 4 * nodes
    assert plan.total_gpus == 8 * nodes
    head = path.read_text().splitlines()[:4]
    assert any(f"rlvr launch slurm {_rel(path)}" in line for line in head)
    assert any(f"rlvr launch ray {_rel(path)}" in line for line in head)


def _flat(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out |= _flat(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


@pytest.mark.parametrize("one", ONE_NODE, ids=[p.stem for p in ONE_NODE])
def test_two_node_twin_changes_only_the_split(one: Path):
    two = one.with_name(one.name.replace("_1x8", "_2x8"))
    a, b = (_flat(load_recipe(p)[0].model_dump()) for p in (one, two))
    assert {k for k in a if a[k] != b[k]} == {
        "name",
        "learner.num_ranks",
        "rollout.num_workers",
        "resources.nodes",
    }
    assert b["learner.num_ranks"] == 2 * a["learner.num_ranks"]
    assert b["rollout.num_workers"] == 2 * a["rollout.num_workers"]


@pytest.mark.parametrize("path", ONE_NODE, ids=[p.stem for p in ONE_NODE])
def test_header_states_the_paper_and_its_settings(path: Path):
    header = "\n".join(line for line in path.read_text().splitlines() if line.startswith("#"))
    assert "arXiv" in header and "Paper:" in header
    raw = load_recipe_dict(path)
    lr = f"{raw['learner']['lr']:g}".replace("e-0", "e-")  # 1e-06 -> 1e-6, as the header writes it
    assert f"lr {lr}" in header


@pytest.mark.parametrize("target", ["slurm", "ray"])
def test_resubmitted_job_resumes(target: str):
    script = render(target, "recipes/gpu/grpo_gsm8k_2x8.yaml", ["train.steps=500"], resume="auto")
    assert (
        "rlvr train recipes/gpu/grpo_gsm8k_2x8.yaml train.steps=500 resources.ray_address=auto --resume auto"
        in script
    )
    rendered_by = (
        f"# Rendered by: rlvr launch {target} recipes/gpu/grpo_gsm8k_2x8.yaml train.steps=500 --resume auto"
    )
    assert rendered_by in script


@pytest.mark.parametrize("path", GPU, ids=[p.stem for p in GPU])
def test_rendered_slurm_job_allocates_the_recipes_nodes(path: Path, tmp_path: Path):
    nodes = int(path.stem.rsplit("_", 1)[1].split("x")[0])
    script = render("slurm", _rel(path))
    assert f"#SBATCH --nodes={nodes}\n" in script and "#SBATCH --gpus-per-node=8\n" in script
    assert "ray start --head" in script and "--num-gpus=8" in script
    assert f"rlvr train {_rel(path)} resources.ray_address=auto\n" in script
    if shutil.which("shellcheck"):
        job = tmp_path / "job.sh"
        job.write_text(script)
        out = subprocess.run(["shellcheck", str(job)], capture_output=True, text=True)
        assert out.returncode == 0, out.stdout
