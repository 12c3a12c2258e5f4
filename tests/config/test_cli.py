"""`rlvr validate` end to end in a subprocess, and the torch-free config import."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def rlvr(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rlvr.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_validate_prints_resolved_recipe_and_sizes():
    out = rlvr("validate", "recipes/quickstart.yaml", "train.steps=3")
    assert out.returncode == 0, out.stderr
    assert "samples_per_step:" in out.stdout
    assert "max_tokens_per_step:" in out.stdout
    assert "optimizer_updates_per_step:" in out.stdout
    assert "learner_ranks:" in out.stdout
    assert "steps: 3" in out.stdout


def test_validate_misspelt_key_exits_2_without_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(textwrap.dedent("rollout:\n  samples_per_promt: 8\n"))
    out = rlvr("validate", str(bad))
    assert out.returncode == 2
    assert "rollout.samples_per_promt" in out.stderr
    assert "samples_per_prompt" in out.stderr
    assert "Traceback" not in out.stderr


def test_validate_wrong_type_names_key_and_value(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  prompts_per_step: lots\n")
    out = rlvr("validate", str(bad))
    assert out.returncode == 2
    assert "train.prompts_per_step" in out.stderr and "'lots'" in out.stderr


def test_validate_missing_file_exits_2(tmp_path):
    out = rlvr("validate", str(tmp_path / "nope.yaml"))
    assert out.returncode == 2 and "Traceback" not in out.stderr


def test_config_and_cli_import_without_heavy_packages():
    code = (
        "import sys, rlvr.config, rlvr.cli\n"
        "rlvr.cli.build_parser()\n"
        "heavy = [m for m in ('torch', 'vllm', 'ray', 'deepspeed', 'transformers') if m in sys.modules]\n"
        "print(heavy)\n"
        "assert not heavy, heavy\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr + out.stdout
