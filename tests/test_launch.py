"""Launch templates are valid shell and name only commands that exist."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

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
