"""CHECKPOINT resolution shared by `rlvr eval` and `rlvr export`, on checkpoints committed by the real manager."""

from __future__ import annotations

import os

import pytest
import yaml

from rlvr.cli import is_user_error
from rlvr.eval.checkpoints import CheckpointPathError, resolve_checkpoint


def test_step_dir_resolves_to_its_hf_export_and_recipe(tmp_path, checkpoint):
    step_dir = checkpoint(tmp_path / "ckpts", 10, recipe={"name": "x"})
    ckpt = resolve_checkpoint(step_dir)
    assert ckpt.path == step_dir
    assert ckpt.hf_dir == step_dir / "hf"
    assert ckpt.recipe_file == step_dir / "recipe.yaml"
    assert ckpt.step == 10


def test_checkpoint_root_picks_latest_complete(tmp_path, checkpoint):
    root = tmp_path / "ckpts"
    checkpoint(root, 10)
    newest = checkpoint(root, 20)
    assert resolve_checkpoint(root).path == newest
    # A newest step dir that lost a file is skipped: the latest COMPLETE checkpoint wins.
    (newest / "trainer_state.json").write_text("truncated")
    ckpt = resolve_checkpoint(root)
    assert ckpt.step == 10 and (ckpt.hf_dir / "tag.txt").read_text() == "step10"


def test_run_dir_uses_its_checkpoints_subdir(tmp_path, checkpoint):
    run = tmp_path / "runs" / "quick"
    checkpoint(run / "checkpoints", 3, recipe={"name": "quick"})
    (run / "recipe.yaml").write_text(yaml.safe_dump({"name": "quick"}))
    ckpt = resolve_checkpoint(run)
    assert ckpt.step == 3 and ckpt.recipe_file is not None


def test_run_dir_honours_custom_checkpoint_dir(tmp_path, checkpoint):
    run, elsewhere = tmp_path / "run", tmp_path / "scratch" / "ck"
    run.mkdir()
    checkpoint(elsewhere, 7)
    (run / "recipe.yaml").write_text(yaml.safe_dump({"checkpoint": {"dir": str(elsewhere)}}))
    assert resolve_checkpoint(run).path == elsewhere / "step_000007"


def test_plain_hf_model_dir(tmp_path, hf_dir):
    model = hf_dir(tmp_path / "model")
    ckpt = resolve_checkpoint(str(model))
    assert ckpt.path == ckpt.hf_dir == model
    assert ckpt.recipe_file is None and ckpt.step is None


def _error(path) -> str:
    with pytest.raises(CheckpointPathError) as info:
        resolve_checkpoint(path)
    assert is_user_error(info.value)  # the CLI prints it and exits 2, no traceback
    return str(info.value)


def test_missing_path(tmp_path):
    assert "does not exist" in _error(tmp_path / "nope")


def test_incomplete_step_dir_is_refused(tmp_path, checkpoint):
    step_dir = checkpoint(tmp_path / "ckpts", 5)
    os.remove(step_dir / "hf" / "model.safetensors")
    assert "incomplete" in _error(step_dir)


def test_checkpoint_without_hf_export(tmp_path, checkpoint):
    step_dir = checkpoint(tmp_path / "ckpts", 5, hf=False)
    assert "export_hf" in _error(step_dir)


def test_run_dir_without_complete_checkpoint(tmp_path):
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    assert "no complete checkpoint" in _error(tmp_path / "run")


def test_unrelated_directory(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    message = _error(tmp_path)
    assert "config.json" in message and "checkpoint" in message
