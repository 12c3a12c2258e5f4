"""Start-up failures are one line naming the key, file or row, exit 2, no traceback.

`rlvr validate` runs the same checks as `rlvr train` (rlvr.preflight) without starting engines, so most cases
go through it in-process; `rlvr train` is exercised in a subprocess for the model-path case to prove the
checks run before any Ray actor starts and the traceback lands in the run's log file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rlvr.cli import main
from rlvr.tiny.tokenizer import save_tokenizer

ROOT = Path(__file__).resolve().parents[2]
CONFIG = {"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"], "vocab_size": 300}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A model folder with a config and the tiny tokenizer (validate never loads weights)."""
    path = tmp_path_factory.mktemp("model")
    save_tokenizer(path)
    (path / "config.json").write_text(json.dumps(CONFIG))
    return path


def write_recipe(tmp_path: Path, model: str | Path, train: dict, extra: dict | None = None) -> Path:
    recipe = {
        "name": "t",
        "model": {"path": str(model)},
        "data": {"train": train, "eval": None},
        "train": {"prompts_per_step": 2},
        "rollout": {"max_prompt_tokens": 64},
        "logging": {"run_dir": str(tmp_path / "run")},
    }
    for key, value in (extra or {}).items():
        recipe[key] = {**recipe.get(key, {}), **value} if isinstance(value, dict) else value
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def jsonl(path: Path, rows: list) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


GOOD_ROWS = [{"question": f"What is {i}+1?", "answer": f"so\n#### {i + 1}"} for i in range(4)]


def validate(recipe: Path, capsys) -> tuple[int, str]:
    rc = main(["validate", "--quiet", str(recipe)])
    err = capsys.readouterr().err
    return rc, err


def assert_one_error(rc: int, err: str, *needles: str) -> None:
    assert rc == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith(("error", "  - "))]
    assert len(lines) <= 2, err  # "error:" and one "  - message" line
    for needle in needles:
        assert needle in err, (needle, err)


def test_good_recipe_is_checked(tmp_path, model_dir, capsys):
    src = jsonl(tmp_path / "d.jsonl", GOOD_ROWS)
    rc, err = validate(write_recipe(tmp_path, model_dir, {"source": src, "format": "gsm8k"}), capsys)
    assert rc == 0, err
    assert "data.train 4 rows" in err and "tokenizer loads" in err


def test_missing_model_dir(tmp_path, capsys):
    recipe = write_recipe(tmp_path, tmp_path / "no" / "such" / "model", {"source": "synthetic"})
    rc, err = validate(recipe, capsys)
    assert_one_error(rc, err, "model.path", "does not exist")


def test_model_dir_without_config(tmp_path, capsys):
    (tmp_path / "m").mkdir()
    rc, err = validate(write_recipe(tmp_path, tmp_path / "m", {"source": "synthetic"}), capsys)
    assert_one_error(rc, err, "model.path", "no config.json")


def test_model_dir_without_tokenizer(tmp_path, capsys):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text(json.dumps(CONFIG))
    rc, err = validate(write_recipe(tmp_path, tmp_path / "m", {"source": "synthetic"}), capsys)
    assert_one_error(rc, err, "model.path", "has no tokenizer")


def test_chat_template_missing(tmp_path, model_dir, capsys):
    m = tmp_path / "m"
    m.mkdir()
    for f in model_dir.iterdir():
        (m / f.name).write_bytes(f.read_bytes())
    cfg = json.loads((m / "tokenizer_config.json").read_text())
    cfg.pop("chat_template", None)
    (m / "tokenizer_config.json").write_text(json.dumps(cfg))
    for extra in m.glob("chat_template.*"):
        extra.unlink()
    src = jsonl(tmp_path / "d.jsonl", GOOD_ROWS)
    rc, err = validate(write_recipe(tmp_path, m, {"source": src, "format": "gsm8k"}), capsys)
    assert_one_error(rc, err, "data.train.template", "no chat template")
    # plain needs no template
    recipe = write_recipe(tmp_path, m, {"source": src, "format": "gsm8k", "template": "plain"})
    rc, err = validate(recipe, capsys)
    assert rc == 0, err


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"", "file is empty"),
        (b"\n\n  \n", "file is empty"),
        (b"\xff\xfe\x00binary\x80\x81", "not UTF-8"),
        (b'{"question": "q", "answer": "#### 1"}\n{"question": \n', "line 2: not valid JSON"),
        (b"[1, 2]\n", "line 1: expected a JSON object"),
        (b'{"question": "q"}\n', "row 0: missing field 'answer'"),
        (b'{"question": ["a"], "answer": "#### 1"}\n', "must be text or a number"),
    ],
)
def test_bad_dataset_file(tmp_path, model_dir, capsys, content, needle):
    path = tmp_path / "d.jsonl"
    path.write_bytes(content)
    rc, err = validate(write_recipe(tmp_path, model_dir, {"source": str(path), "format": "gsm8k"}), capsys)
    assert_one_error(rc, err, "data.train", str(path), needle)


@pytest.mark.parametrize(
    ("suffix", "content"), [(".json", b"{not json"), (".csv", b"\xff\xfe"), (".parquet", b"PAR1xx")]
)
def test_bad_dataset_other_formats(tmp_path, model_dir, capsys, suffix, content):
    path = tmp_path / f"d{suffix}"
    path.write_bytes(content)
    rc, err = validate(write_recipe(tmp_path, model_dir, {"source": str(path), "format": "gsm8k"}), capsys)
    assert_one_error(rc, err, "data.train", str(path))


def test_missing_dataset_file(tmp_path, model_dir, capsys):
    recipe = write_recipe(tmp_path, model_dir, {"source": str(tmp_path / "nope.jsonl"), "format": "gsm8k"})
    rc, err = validate(recipe, capsys)
    assert_one_error(rc, err, "data.train", "file not found")


def test_prompts_per_step_larger_than_dataset(tmp_path, model_dir, capsys):
    src = jsonl(tmp_path / "d.jsonl", GOOD_ROWS)
    recipe = write_recipe(
        tmp_path, model_dir, {"source": src, "format": "gsm8k"}, {"train": {"prompts_per_step": 5}}
    )
    rc, err = validate(recipe, capsys)
    assert_one_error(rc, err, "train.prompts_per_step=5", "4 rows")


def test_long_prompts_are_counted_and_named(tmp_path, model_dir, capsys):
    rows = list(GOOD_ROWS)
    rows[1] = {"question": "x" * 100, "answer": "#### 1"}
    rows[3] = {"question": "y" * 80, "answer": "#### 1"}
    src = jsonl(tmp_path / "d.jsonl", rows)
    rc, err = validate(write_recipe(tmp_path, model_dir, {"source": src, "format": "gsm8k"}), capsys)
    assert_one_error(
        rc, err, "data.train: 2 of 4 prompts", "rollout.max_prompt_tokens=64", "row 1 (", "row 3 ("
    )


def test_train_refuses_missing_model_before_any_actor(tmp_path):
    recipe = write_recipe(tmp_path, tmp_path / "no" / "model", {"source": "synthetic"})
    out = subprocess.run(
        [sys.executable, "-m", "rlvr.cli", "train", str(recipe)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert_one_error(out.returncode, out.stderr, "model.path", "does not exist")
    log = (tmp_path / "run" / "run.log").read_text()
    assert "Traceback" in log and "StartupError" in log
    assert "ray" not in log.lower()  # failed before Ray started


def test_validate_never_builds_the_tiny_model(tmp_path):
    cache = tmp_path / "empty-cache"
    out = subprocess.run(
        [sys.executable, "-m", "rlvr.cli", "validate", "--quiet", "recipes/quickstart.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "RLVR_CACHE": str(cache)},
    )
    assert out.returncode == 0, out.stderr
    assert "is not built yet" in out.stderr and "data.train 20000 rows" in out.stderr
    assert not cache.exists() or not any(cache.iterdir())
