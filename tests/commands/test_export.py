"""`rlvr export`: verified, atomic copy of a checkpoint's HF export; refuses to clobber; rejects torn weights."""

from __future__ import annotations

import os
import shutil

import pytest

from rlvr.cli import is_user_error
from rlvr.commands import export
from rlvr.commands.export import ExportError, check_safetensors_header, export_checkpoint, verify_hf_dir


def test_export_copies_hf_dir_of_latest_checkpoint(tmp_path, checkpoint, parse_args, capsys):
    root = tmp_path / "run" / "checkpoints"
    checkpoint(root, 1)
    checkpoint(root, 2)
    out = tmp_path / "exported"
    assert export.run(parse_args(export, [str(tmp_path / "run"), str(out)])) == 0
    assert (out / "tag.txt").read_text() == "step2"
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors", "tag.txt"]
    assert "step 2" in capsys.readouterr().out
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp dir left


def test_refuses_non_empty_out_without_force(tmp_path, hf_dir, checkpoint, parse_args):
    step_dir = checkpoint(tmp_path / "ck", 4)
    out = hf_dir(tmp_path / "out", tag="old")
    with pytest.raises(ExportError, match="--force") as info:
        export.run(parse_args(export, [str(step_dir), str(out)]))
    assert is_user_error(info.value)
    assert (out / "tag.txt").read_text() == "old"
    export.run(parse_args(export, [str(step_dir), str(out), "--force"]))
    assert (out / "tag.txt").read_text() == "step4"


def test_empty_out_dir_is_fine(tmp_path, hf_dir):
    (tmp_path / "out").mkdir()
    export_checkpoint(hf_dir(tmp_path / "m"), tmp_path / "out")
    assert (tmp_path / "out" / "config.json").is_file()


def test_out_that_is_a_file_is_refused(tmp_path, hf_dir):
    (tmp_path / "out").write_text("x")
    with pytest.raises(ExportError, match="not a directory"):
        export_checkpoint(hf_dir(tmp_path / "m"), tmp_path / "out", force=True)


def test_torn_weights_never_reach_out(tmp_path, hf_dir):
    """A source whose safetensors lost its tail fails verification; OUT keeps the previous export."""
    src = hf_dir(tmp_path / "src", tag="new")
    weights = src / "model.safetensors"
    with open(weights, "r+b") as f:
        f.truncate(weights.stat().st_size - 4)
    out = hf_dir(tmp_path / "out", tag="old")
    with pytest.raises(ExportError, match="buffer"):
        export_checkpoint(src, out, force=True)
    assert (out / "tag.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]


def test_export_into_its_own_source_is_refused(tmp_path, hf_dir):
    src = hf_dir(tmp_path / "m")
    with pytest.raises(ExportError, match="into itself"):
        export_checkpoint(src, src / "copy")


def test_verify_rejects_bad_config_and_missing_weights(tmp_path, hf_dir):
    model = hf_dir(tmp_path / "m")
    os.remove(model / "model.safetensors")
    with pytest.raises(ExportError, match=r"no \*\.safetensors"):
        verify_hf_dir(model)
    shutil.rmtree(model)
    model = hf_dir(tmp_path / "m")
    (model / "config.json").write_text("{not json")
    with pytest.raises(ExportError, match="AutoConfig"):
        verify_hf_dir(model)


def test_verify_checks_index_shards(tmp_path, hf_dir):
    model = hf_dir(tmp_path / "m")
    (model / "model.safetensors.index.json").write_text(
        '{"weight_map": {"a": "model.safetensors", "b": "model-00002-of-00002.safetensors"}}'
    )
    with pytest.raises(ExportError, match="model-00002-of-00002"):
        verify_hf_dir(model)


def test_safetensors_header_check(tmp_path, hf_dir):
    weights = hf_dir(tmp_path / "m") / "model.safetensors"
    assert check_safetensors_header(weights) == 2
    data = weights.read_bytes()
    weights.write_bytes(data + b"\0" * 8)  # padded: tensors no longer cover the buffer exactly
    with pytest.raises(ExportError, match="cover"):
        check_safetensors_header(weights)
    weights.write_bytes(b"\xff" * 8 + data[8:])  # absurd header length
    with pytest.raises(ExportError, match="header length"):
        check_safetensors_header(weights)
