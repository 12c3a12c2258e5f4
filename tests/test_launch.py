"""Launch scripts: the templates and the scripts `rlvr launch` renders are valid, shellcheck-clean shell that
allocates and starts what the recipe's `resources` ask for."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rlvr.config.sections import min_nodes
from rlvr.launch import plan_launch, render, render_slurm

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p for p in (ROOT / "launch").iterdir() if p.suffix in (".sh", ".sbatch"))


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_launch_script_parses(script: Path):
    out = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_launch_script_uses_real_subcommands(script: Path):
    from rlvr.cli import COMMANDS

    for line in script.read_text().splitlines():
        words = line.split()
        if "rlvr" in words and not line.lstrip().startswith("#"):
            sub = words[words.index("rlvr") + 1]
            assert sub in COMMANDS, f"{script.name} calls unknown `rlvr {sub}`"


def test_ray_cluster_rejects_unknown_role():
    out = subprocess.run(
        ["bash", str(ROOT / "launch/ray_cluster.sh"), "nope"], capture_output=True, text=True
    )
    assert out.returncode == 2 and "unknown role" in out.stderr


# ---- rendered launch scripts (`rlvr launch`) -------------------------------------------------------------------

GRPO = "recipes/methods/grpo.yaml"
# 2 nodes x 8 GPUs: 8 learner ranks x 1 GPU on one node's worth, 4 rollout workers x 2 GPUs on the other's.
TWO_NODES = [
    "device=cuda",
    "learner.num_ranks=8",
    "resources.gpus_per_learner=1",
    "rollout.num_workers=4",
    "resources.gpus_per_rollout_worker=2",
    "resources.gpus_per_node=8",
]
SHELLCHECK = shutil.which("shellcheck")
needs_shellcheck = pytest.mark.skipif(
    SHELLCHECK is None,
    reason="shellcheck is not installed (apt-get install -y shellcheck; .ci/run installs it)",
)


def _cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rlvr.cli", *argv], capture_output=True, text=True, cwd=ROOT, timeout=120
    )


def _rendered(target: str, tmp_path: Path, *overrides: str) -> Path:
    out = tmp_path / f"job.{target}.sh"
    out.write_text(render(target, GRPO, list(overrides)))
    return out


def _sbatch(script: str) -> dict[str, str]:
    lines = [line for line in script.splitlines() if line.startswith("#SBATCH --")]
    pairs = (line.removeprefix("#SBATCH --").partition("=") for line in lines)
    return {key: value for key, _, value in pairs}


@needs_shellcheck
@pytest.mark.parametrize("script", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_launch_script_passes_shellcheck(script: Path):
    out = subprocess.run([SHELLCHECK, "--shell=bash", str(script)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@needs_shellcheck
@pytest.mark.parametrize("target", ["slurm", "ray"])
def test_rendered_two_node_script_passes_shellcheck(target: str, tmp_path: Path):
    script = _rendered(
        target, tmp_path, *TWO_NODES, "model.path=/models/My Model"
    )  # a path that needs quoting
    out = subprocess.run([SHELLCHECK, "--shell=bash", str(script)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_two_node_slurm_script_allocates_and_starts_what_the_recipe_needs():
    script = render("slurm", GRPO, TWO_NODES)
    assert _sbatch(script) == {
        "job-name": "grpo",
        "nodes": "2",
        "ntasks-per-node": "1",
        "gpus-per-node": "8",
        "exclusive": "",
        "output": "rlvr-%j.out",
    }
    assert "learners 8 x 1 GPU + rollout workers 4 x 2 GPU = 16 GPUs on 2 node(s) x 8 GPUs" in script
    lines = [line.strip() for line in script.splitlines()]
    heads = [line for line in lines if "ray start --head" in line]
    assert len(heads) == 1 and '-w "$head"' in heads[0] and "--num-gpus=8" in heads[0]
    workers = [line for line in lines if "ray start --address=" in line]
    assert len(workers) == 1 and '-w "$node"' in workers[0] and "--num-gpus=8" in workers[0]
    assert 'for node in "${nodes[@]:1}"; do' in lines  # workers on every node but the head
    assert lines.index(heads[0]) < lines.index(workers[0])
    train = lines[-1]
    assert train.startswith(
        'srun --overlap --nodes=1 --ntasks=1 -w "$head" rlvr train recipes/methods/grpo.yaml'
    )
    assert all(o in train for o in TWO_NODES) and train.endswith("resources.ray_address=auto")


def test_node_count_follows_the_gpu_split():
    learners_only = [*TWO_NODES[:3], "rollout.num_workers=1", "resources.gpus_per_rollout_worker=0"]
    assert plan_launch(GRPO, learners_only).nodes == 1
    assert plan_launch(GRPO, TWO_NODES).nodes == 2
    assert plan_launch(GRPO, [*TWO_NODES, "resources.gpus_per_node=16"]).nodes == 1
    assert (
        plan_launch(GRPO, [*TWO_NODES, "resources.nodes=3"]).nodes == 3
    )  # more than needed is the user's call
    # rollout GPUs default to the tensor-parallel size off CPU: 4 workers x TP 4 + 8 learners = 24 GPUs
    tp4 = [*TWO_NODES[:4], "rollout.tensor_parallel_size=4"]
    plan = plan_launch(GRPO, tp4)
    assert (plan.gpus_per_rollout_worker, plan.total_gpus, plan.nodes) == (4.0, 24.0, 3)
    # whole actors per node: 6 actors of 3 GPUs are 18 GPUs, but 8-GPU nodes hold two each
    odd = [
        "device=cuda",
        "learner.num_ranks=1",
        "resources.gpus_per_learner=3",
        "rollout.num_workers=5",
        "resources.gpus_per_rollout_worker=3",
    ]
    assert plan_launch(GRPO, odd).nodes == 3


def test_cpu_recipe_renders_without_gpu_requests():
    plan = plan_launch("recipes/quickstart.yaml")
    script = render_slurm(plan)
    assert plan.gpus_per_node == 0 and _sbatch(script)["nodes"] == "1"
    assert "gpus-per-node" not in script and "--num-gpus" not in script


def test_a_user_ray_address_is_replaced_by_the_cluster():
    train = plan_launch(GRPO, [*TWO_NODES, "resources.ray_address=10.0.0.1:6379"]).train_command()
    assert "10.0.0.1" not in train and train.endswith("resources.ray_address=auto")


def test_ray_script_has_head_worker_and_train_roles(tmp_path: Path):
    script = render("ray", GRPO, TWO_NODES)
    assert 'head)   ray start --head --port="$port" --num-gpus=8' in script
    assert 'worker) ray start --address="${2:?worker needs HEAD_IP}:$port" --num-gpus=8' in script
    assert "train)  exec rlvr train recipes/methods/grpo.yaml device=cuda" in script
    assert "2. on the 1 other node(s)" in script
    out = subprocess.run(
        ["bash", str(_rendered("ray", tmp_path, *TWO_NODES)), "nope"], capture_output=True, text=True
    )
    assert out.returncode == 2 and "unknown role" in out.stderr


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ([*TWO_NODES, "resources.nodes=1"], "resources.nodes"),
        ([*TWO_NODES, "resources.gpus_per_rollout_worker=16"], "resources.gpus_per_node"),
    ],
)
def test_actors_that_do_not_fit_the_nodes_are_refused_in_one_line(overrides: list[str], key: str):
    out = _cli("launch", "slurm", GRPO, *overrides)
    assert out.returncode == 2 and not out.stdout
    problems = [line for line in out.stderr.splitlines() if line.startswith("  - ")]
    assert len(problems) == 1 and problems[0].startswith(f"  - {key}: ") and "Traceback" not in out.stderr
    assert "resources.gpus_per_node=8" in problems[0]


def test_min_nodes_is_exact_for_two_actor_sizes():
    assert min_nodes(8, 1.0, 4, 2.0, 8) == 2
    assert min_nodes(1, 3.0, 5, 3.0, 8) == 3  # 18 GPUs, yet 3 nodes: no actor spans two
    assert min_nodes(16, 0.5, 16, 0.5, 8) == 2  # colocated fractions
    assert min_nodes(3, 0.0, 0, 0.0, 8) == 1  # CPU-only actors
    assert min_nodes(1, 9.0, 0, 0.0, 8) is None


def test_launch_command_writes_an_executable_script_and_imports_no_engine(tmp_path: Path):
    out = _cli("launch", "slurm", GRPO, *TWO_NODES, "--output", str(tmp_path / "job.sh"))
    assert out.returncode == 0, out.stderr
    assert (
        os.access(tmp_path / "job.sh", os.X_OK) and "#SBATCH --nodes=2" in (tmp_path / "job.sh").read_text()
    )
    probe = (
        "import sys; from rlvr.cli import main; main(['launch', 'ray', " + repr(GRPO) + "]); "
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'ray', 'vllm', 'deepspeed'}); "
        "assert not heavy, heavy"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr


# Stand-ins for the cluster's own commands (no SLURM or Ray cluster here): they log how the script calls them.
STAND_INS = {
    "scontrol": 'printf "gpu-a\\ngpu-b\\n"',
    "srun": (
        'echo "srun $*" >> "$CALLS"\n'
        'case " $* " in *" hostname "*) echo 10.0.0.1 ;; *" status "*) printf " 1 node_a\\n 1 node_b\\n" ;; esac'
    ),
    "rlvr": f'exec {shlex.quote(sys.executable)} -m rlvr.cli "$@"',
}


def _stand_ins(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in STAND_INS.items():
        (bin_dir / name).write_text(f"#!/usr/bin/env bash\n{body}\n")
        (bin_dir / name).chmod(0o755)
    return {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "CALLS": str(tmp_path / "calls.log"),
        "SLURM_JOB_NODELIST": "gpu-[a-b]",
        "SLURM_JOB_NUM_NODES": "2",
        "SLURM_GPUS_ON_NODE": "8",
        "PYTHONPATH": str(ROOT),
    }


def test_rendered_slurm_script_starts_head_then_workers_then_train(tmp_path: Path):
    env = _stand_ins(tmp_path)
    out = subprocess.run(
        ["bash", str(_rendered("slurm", tmp_path, *TWO_NODES))],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    calls = [
        line.split(" ray ")[-1].split(" rlvr ")[-1]
        for line in (tmp_path / "calls.log").read_text().splitlines()
    ]
    assert "-w gpu-a hostname --ip-address" in calls[0]
    starts = [c for c in calls if c.startswith("start")]
    assert starts == [
        "start --head --node-ip-address=10.0.0.1 --port=6379 --num-gpus=8 --disable-usage-stats --block",
        "start --address=10.0.0.1:6379 --num-gpus=8 --disable-usage-stats --block",
    ]
    assert calls[-1].startswith("train recipes/methods/grpo.yaml") and "2 of 2 node(s)" in out.stdout


def test_slurm_sbatch_checks_the_recipe_against_the_allocation(tmp_path: Path):
    env = {**_stand_ins(tmp_path), "SLURM_JOB_NUM_NODES": "1"}
    sbatch = ROOT / "launch/slurm.sbatch"
    out = subprocess.run(
        ["bash", str(sbatch), GRPO, *TWO_NODES], capture_output=True, text=True, env=env, cwd=ROOT
    )
    assert out.returncode == 2 and "resources.nodes=1 x resources.gpus_per_node=8" in out.stderr
    env["SLURM_JOB_NUM_NODES"] = "2"
    out = subprocess.run(
        ["bash", str(sbatch), GRPO, *TWO_NODES], capture_output=True, text=True, env=env, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    assert "rlvr train recipes/methods/grpo.yaml" in (tmp_path / "calls.log").read_text().splitlines()[-1]


def test_readme_launch_commands_render():
    """Every `rlvr launch` example in the README renders (the docs guard parses it; this also sizes it)."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "README.md").read_text())
    lines = [line.split("#")[0] for line in text.splitlines() if line.startswith("rlvr launch ")]
    assert len(lines) >= 2
    for line in lines:
        words = [w for w in shlex.split(line) if w not in ("-o", "--output") and not w.endswith(".sh")]
        plan = plan_launch(words[3], words[4:])
        assert (plan.nodes, plan.gpus_per_node, plan.total_gpus) == (2, 8, 16.0), line
