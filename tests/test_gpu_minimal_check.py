"""scripts/gpu_minimal_check.py, the check for a GPU machine with only PyTorch and transformers, runs on CPU too.

With `--device cpu` its three checks run here: a slice of tests/algo under the default-device plugin and
plain-torch GRPO updates raising the advantage-weighted logprob (fast), and the weight group pushing HF-named
tensors over gloo into a plain transformers model in another process, the probe within the fp32 tolerance and
the corrupted push detected (slow). Each check prints `ok:` only when its own assertions held.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gpu_minimal_check.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("gpu_minimal_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tolerances_are_the_sync_probe_defaults():
    from rlvr.config.rollout import FLOAT32_TOLERANCE, HALF_PRECISION_TOLERANCE

    script = _load_script()
    assert (script.FLOAT32_TOLERANCE, script.HALF_PRECISION_TOLERANCE) == (
        FLOAT32_TOLERANCE,
        HALF_PRECISION_TOLERANCE,
    )


def test_default_device_plugin_moves_factories_and_keeps_seeded_cpu_generators():
    """The algo check's plugin on the `meta` device (a device other than the generators' CPU, without a GPU)."""
    import torch

    plugin = _load_script().DefaultDevice("meta")
    plugin.pytest_configure(None)
    try:
        made = torch.zeros(3)
        drawn = torch.rand(4, generator=torch.Generator().manual_seed(0))
        pinned = torch.ones(2, device="cpu")
    finally:
        plugin.pytest_unconfigure(None)
    assert made.device.type == "meta" and drawn.device.type == "meta" and pinned.device.type == "cpu"
    assert torch.zeros(1).device.type == "cpu"  # the mode ends with the session


def run_script(cwd: Path, *args: str) -> dict[str, str]:
    """Run the script with --device cpu; its per-check lines by check name."""
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--device", "cpu", *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    prefix = "[gpu-minimal] "
    return {
        line[len(prefix) :].split(":")[0]: line for line in out.stdout.splitlines() if line.startswith(prefix)
    }


def test_algo_and_learner_checks_pass_on_cpu(tmp_path):
    lines = run_script(tmp_path, "--only", "algo,learner", "--learner", "torch", "--pytest-args=-k drpo")
    assert "ok: tests/algo passed with torch's default device cpu" in lines["algo"]
    assert "ok: plain torch AdamW (no DeepSpeed) on cpu (float32): 3 updates" in lines["learner"]


@pytest.mark.slow  # two spawned processes importing torch and transformers: ~40 s on 2 busy cores
def test_broadcast_check_passes_on_cpu_with_gloo(tmp_path):
    line = run_script(tmp_path, "--only", "broadcast")["broadcast"]
    assert "ok:" in line and "over gloo" in line and "<= 0.0001 (float32)" in line
    assert "corrupted push detected" in line


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch")
def test_cuda_without_a_gpu_says_so():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    out = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "no CUDA device" in out.stdout and "--device cpu" in out.stdout


GPU_SCRIPTS = [ROOT / "scripts" / "gpu_check.sh", ROOT / "scripts" / "gpu_check_minimal.sh"]


@pytest.mark.parametrize("script", GPU_SCRIPTS, ids=[p.name for p in GPU_SCRIPTS])
def test_gpu_check_scripts_are_clean_shell(script: Path):
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (apt-get install -y shellcheck; .ci/run installs it)")
    out = subprocess.run(["shellcheck", str(script)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout
