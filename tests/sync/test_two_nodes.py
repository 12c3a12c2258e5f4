"""Two Ray nodes on one machine: learners on one, rollout workers on the other, weights over the collective
transport, `rlvr train` joined to the cluster through `resources.ray_address`.

The test starts a head and a worker node on 127.0.0.1 with ports of their own, a private temp dir and custom
node resources (`learner_node`, `rollout_node`), and stops exactly the processes it started (the process
trees of its two `ray start --block` commands), never `ray stop`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RAY = str(Path(sys.executable).with_name("ray"))

REWARD_FILE = '''
def digit_share(completion, *, answer, **row):
    """Fraction of characters that are digits: a dense, non-uniform signal for a random model."""
    return sum(ch.isdigit() for ch in completion) / max(len(completion), 1)
'''


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_node(args: list[str], temp_dir: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    """`ray start --block` for one node, on loopback, with every port it would otherwise take by default."""
    ports = [
        f"--node-manager-port={free_port()}",
        f"--object-manager-port={free_port()}",
        f"--dashboard-agent-listen-port={free_port()}",
        f"--dashboard-agent-grpc-port={free_port()}",
        f"--runtime-env-agent-port={free_port()}",
        f"--metrics-export-port={free_port()}",
    ]
    command = [
        RAY,
        "start",
        "--block",
        "--node-ip-address=127.0.0.1",
        f"--temp-dir={temp_dir}",
        *ports,
        *args,
    ]
    return subprocess.Popen(command, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)


def stop_tree(proc: subprocess.Popen) -> None:
    """SIGTERM the process and everything it started, then SIGKILL what is left."""
    import psutil

    try:
        tree = [*psutil.Process(proc.pid).children(recursive=True), psutil.Process(proc.pid)]
    except psutil.NoSuchProcess:
        return
    for p in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.send_signal(signal.SIGTERM)
    _, alive = psutil.wait_procs(tree, timeout=15)
    for p in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    psutil.wait_procs(alive, timeout=10)


@pytest.fixture
def cluster(tmp_path: Path):
    """A head node advertising `learner_node` and a worker node advertising `rollout_node`; yields the address."""
    import ray

    temp_dir = tempfile.mkdtemp(prefix="rlvr2n-", dir="/tmp")  # short: Ray's socket paths have a length limit
    port = free_port()
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "disabled",
        "VLLM_HOST_IP": "127.0.0.1",
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    head_args = [
        "--head",
        f"--port={port}",
        f"--ray-client-server-port={free_port()}",
        "--include-dashboard=false",
        "--num-cpus=1",
        '--resources={"learner_node": 1}',
    ]
    nodes = [start_node(head_args, temp_dir, env, tmp_path / "head.log")]
    address = f"127.0.0.1:{port}"
    worker_args = [f"--address={address}", "--num-cpus=1", '--resources={"rollout_node": 1}']
    try:
        time.sleep(3)
        nodes.append(start_node(worker_args, temp_dir, env, tmp_path / "worker.log"))
        deadline = time.monotonic() + 120
        while True:
            out = subprocess.run(
                [sys.executable, "-c", NODE_COUNT, address],
                capture_output=True,
                text=True,
                env=env,
                timeout=120,
            )
            if out.returncode == 0 and out.stdout.strip() == "2":
                break
            if time.monotonic() > deadline or any(n.poll() is not None for n in nodes):
                logs = "\n".join(p.read_text()[-2000:] for p in tmp_path.glob("*.log"))
                pytest.fail(
                    f"the two-node cluster did not come up: {out.stdout} {out.stderr[-2000:]}\n{logs}"
                )
            time.sleep(2)
        yield address, env
    finally:
        if ray.is_initialized():
            ray.shutdown()
        for node in reversed(nodes):
            stop_tree(node)
        shutil.rmtree(temp_dir, ignore_errors=True)


NODE_COUNT = """
import sys, ray
ray.init(address=sys.argv[1], logging_level="ERROR")
print(sum(1 for n in ray.nodes() if n["Alive"]))
"""

PLACEMENT = """
import json, sys, ray
ray.init(address=sys.argv[1], logging_level="ERROR")
nodes = {n["NodeID"]: sorted(k for k in n["Resources"] if k.endswith("_node")) for n in ray.nodes()}
print(json.dumps([[a["ActorClassName"], nodes.get(a["Address"]["NodeID"], [])] for a in ray.state.actors().values()]))
"""


def test_learners_and_rollout_on_two_nodes_collective_sync(tmp_path: Path, cluster, random_model) -> None:
    address, env = cluster
    (tmp_path / "digit_reward.py").write_text(REWARD_FILE)
    recipe = {
        "name": "two-nodes",
        "device": "cpu",
        "seed": 1,
        "model": {"path": str(random_model)},
        "data": {"train": {"limit": 32}},
        "train": {"steps": 2, "prompts_per_step": 2},
        "rollout": {
            "samples_per_prompt": 4,
            "max_prompt_tokens": 64,
            "max_response_tokens": 16,
            "sync": {"transport": "collective"},
        },
        "learner": {"num_ranks": 1, "lr": 1e-3, "micro_batch_tokens": 256},
        "rewards": {"terms": [{"fn": "digit_reward.py:digit_share"}]},
        "eval": {"every_steps": 0},
        "checkpoint": {"export_hf": False},
        "logging": {"run_dir": str(tmp_path / "run"), "tensorboard": False, "progress": False},
        "resources": {
            "ray_address": address,
            "cpus_per_learner": 1,
            "learner_node_resources": {"learner_node": 0.01},
            "rollout_node_resources": {"rollout_node": 0.01},
            # The engine core in a process of its own: the object store could not reach it.
            "env": {"VLLM_ENABLE_V1_MULTIPROCESSING": "1"},
        },
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "rlvr.cli", "train", str(path)],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
        cwd=tmp_path,
    )
    print(f"rlvr train on two nodes: {time.perf_counter() - t0:.0f} s")
    assert out.returncode == 0, out.stderr[-4000:]
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2]
    for r in records:
        print({k: r[k] for k in ("sync/seconds", "sync/bytes", "sync/max_abs_logprob_delta")})
        assert r["sync/max_abs_logprob_delta"] < 1e-4 and r["sync/bytes"] > 0
        assert math.isfinite(r["learner/policy_loss"])
    placed = subprocess.run(
        [sys.executable, "-c", PLACEMENT, address], capture_output=True, text=True, env=env, timeout=120
    )
    assert placed.returncode == 0, placed.stderr[-2000:]
    where = {cls: node for cls, node in json.loads(placed.stdout.strip().splitlines()[-1])}
    assert where["_LearnerActor"] == ["learner_node"], where
    assert where["RolloutWorker"] == ["rollout_node"], where
