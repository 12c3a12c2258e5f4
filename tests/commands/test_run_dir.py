"""A run directory has one `rlvr train` at a time (a lock) and belongs to one recipe."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rlvr.rundir import RunDirError, check_run_dir_recipe, run_dir_lock

ROOT = Path(__file__).resolve().parents[2]


def recipe_file(tmp_path: Path, name: str = "mine", **train) -> Path:
    path = tmp_path / f"{name}.yaml"
    recipe = {
        "name": name,
        "model": {"path": str(tmp_path / "no-model")},
        "logging": {"run_dir": str(tmp_path / "run")},
    }
    if train:
        recipe["train"] = train
    path.write_text(yaml.safe_dump(recipe))
    return path


def rlvr_train(recipe: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rlvr.cli", "train", str(recipe), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_second_lock_is_refused_and_released_on_exit(tmp_path):
    with run_dir_lock(tmp_path / "run"):
        assert (tmp_path / "run" / ".lock").read_text().strip().isdigit()
        with (
            pytest.raises(RunDirError, match="in use by another `rlvr train`"),
            run_dir_lock(tmp_path / "run"),
        ):
            pass
    with run_dir_lock(tmp_path / "run"):  # released: a later run (a resume) takes it
        pass


def test_second_train_on_same_run_dir_is_refused(tmp_path):
    recipe = recipe_file(tmp_path)
    # Another process holds the run directory (as a running `rlvr train` would).
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from rlvr.rundir import run_dir_lock\n"
            f"with run_dir_lock({str(tmp_path / 'run')!r}):\n    print('held', flush=True); time.sleep(60)",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        out = rlvr_train(recipe)
    finally:
        holder.kill()
        holder.wait()
    assert out.returncode == 2, out.stderr
    assert "in use by another `rlvr train`" in out.stderr and f"pid {holder.pid}" in out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "run" / "run.log").exists()  # refused before touching the run's files


def test_run_dir_of_another_recipe_is_refused(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "recipe.yaml").write_text(yaml.safe_dump({"name": "theirs", "seed": 0}))
    out = rlvr_train(recipe_file(tmp_path))
    assert out.returncode == 2, out.stderr
    assert "belongs to recipe 'theirs', not 'mine'" in out.stderr
    assert "Traceback" not in out.stderr
    assert "Traceback" in (tmp_path / "run" / "run.log").read_text()  # the details are in the log


def test_breaking_change_in_same_named_recipe_is_refused(tmp_path):
    saved = {"name": "mine", "seed": 0, "train": {"prompts_per_step": 8}}
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(saved))
    with pytest.raises(RunDirError, match="different recipe"):
        check_run_dir_recipe(tmp_path, {**saved, "seed": 1}, resume=None)
    check_run_dir_recipe(tmp_path, saved, resume=None)  # the same recipe continues
    check_run_dir_recipe(tmp_path / "fresh", saved, resume=None)  # no recipe.yaml: a new run
