"""Fuzz: generated malformed recipes and dataset files never end in a traceback.

A seeded generator builds cases that are invalid by construction (one defect each: a wrong type, a value out
of range, an unknown key, broken YAML, a binary or malformed dataset file, rows with missing, mistyped,
huge or unicode fields). Each goes through `rlvr validate` in-process (`rlvr.cli.main`) and must end in exit
2 with one error message; the dataset cases also go through the loader directly, which may only raise
`DataError`.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import yaml

from rlvr.cli import main
from rlvr.config.data import DatasetConfig
from rlvr.data.loaders import DataError, load_dataset_rows
from rlvr.tiny.tokenizer import save_tokenizer

SEED = 20261202
N_RECIPES = 140
N_DATASETS = 110

# (dotted key, values that are invalid for it)
NUMERIC_KEYS = (
    "train.steps",
    "train.prompts_per_step",
    "rollout.samples_per_prompt",
    "rollout.max_prompt_tokens",
    "rollout.max_response_tokens",
    "rollout.temperature",
    "rollout.top_p",
    "learner.lr",
    "learner.num_ranks",
    "eval.every_steps",
    "checkpoint.keep_last",
)
NOT_A_NUMBER = ("lots", "∞", "1e", [1, 2], {"a": 1}, "", "NaN-ish", "\u202e42", "0x1g")
OUT_OF_RANGE = {
    "train.steps": (0, -1, -(10**30)),
    "train.prompts_per_step": (0, -7, 10**9),  # 10**9 is larger than any dataset here
    "rollout.samples_per_prompt": (0, -3),
    "rollout.max_prompt_tokens": (0, -(10**12)),
    "rollout.max_response_tokens": (0, -5),
    "rollout.temperature": (-0.1, -(10**30)),
    "rollout.top_p": (0, 1.5, 10**30),
    "learner.lr": (0, -1e-3),
    "learner.num_ranks": (0, -2),
    "checkpoint.keep_last": (0, -1),
}
WEIRD = ("ключ", "鍵", "🔑", "a b", "x" * 300, "\x00", "-", "__class__")
SECTIONS = ("model", "data", "rollout", "learner", "algorithm", "train", "checkpoint", "eval", "logging")
BROKEN_YAML = (
    b"model: {path: [unclosed\n",
    b"\x00\x01\x02\xff\xfe binary",
    b"train:\n  steps: 3\n\tbad: tab\n",
    b"- just\n- a list\n",
    b"42\n",
    b"'unterminated string\n",
    b"train: {steps: 1}}\n",
    b"\xef\xbb\xbf\xff\xfe",
    b"key: &a [*a]\n",
    b"train:\n  steps: !!python/object/apply:os.system ['true']\n",
)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model")
    save_tokenizer(path)
    (path / "config.json").write_text(json.dumps({"model_type": "qwen2", "vocab_size": 300}))
    return path


def base_recipe(model: Path, data: Path) -> dict:
    return {
        "name": "fuzz",
        "model": {"path": str(model)},
        "data": {"train": {"source": str(data), "format": "gsm8k"}, "eval": None},
        "train": {"prompts_per_step": 2, "steps": 2},
        "rollout": {"max_prompt_tokens": 64},
    }


def set_key(recipe: dict, dotted: str, value) -> None:
    *parents, leaf = dotted.split(".")
    node = recipe
    for p in parents:
        node = node.setdefault(p, {})
    node[leaf] = value


def good_rows(n: int = 4) -> list[dict]:
    return [{"question": f"What is {i}+1?", "answer": f"so\n#### {i + 1}"} for i in range(n)]


def recipe_cases(rng: random.Random, model: Path, data: Path) -> list[tuple[str, bytes]]:
    cases = []
    for i in range(N_RECIPES):
        recipe = base_recipe(model, data)
        kind = i % 7
        if kind == 0:
            key = rng.choice(NUMERIC_KEYS)
            set_key(recipe, key, rng.choice(NOT_A_NUMBER))
            label = f"wrong type {key}"
        elif kind == 1:
            key = rng.choice(sorted(OUT_OF_RANGE))
            set_key(recipe, key, rng.choice(OUT_OF_RANGE[key]))
            label = f"out of range {key}"
        elif kind == 2:
            section = rng.choice(SECTIONS)
            recipe.setdefault(section, {})
            if not isinstance(recipe[section], dict):
                recipe[section] = {}
            recipe[section][rng.choice(WEIRD) + str(i)] = rng.choice([1, "x", None, [], {"k": "v"}])
            label = f"unknown key in {section}"
        elif kind == 3:
            section = rng.choice(SECTIONS)
            recipe[section] = rng.choice([[1, 2], "text", 3.5, ["a"]])
            label = f"section {section} not a mapping"
        elif kind == 4:
            recipe["model"]["path"] = rng.choice(
                [str(data.parent / f"missing-{i}" / "m"), str(data), f"./rel/{i}/x/y", "~/nowhere/" + "é" * 5]
            )
            label = "bad model.path"
        elif kind == 5:
            recipe["data"]["train"]["source"] = rng.choice(
                [str(data.parent / f"missing-{i}.jsonl"), str(data.parent / f"missing-{i}.csv")]
            )
            label = "missing data file"
        else:
            choice = rng.choice(["name", "format", "template", "estimator", "loss"])
            if choice == "name":
                recipe["name"] = rng.choice(WEIRD[:4]) + " bad/name"
            elif choice == "format":
                recipe["data"]["train"]["format"] = rng.choice(["GSM8K", "no-such", "mäth", "1x"])
            elif choice == "template":
                recipe["data"]["train"]["template"] = rng.choice(["jinja", 3, None, ["chat"]])
            elif choice == "estimator":
                recipe["algorithm"] = {"estimator": {"name": rng.choice(["Bad-Name", "", "🔥", 7])}}
            else:
                recipe["algorithm"] = {"loss": {"name": rng.choice(["with space", "🔥", 0])}}
            label = f"bad {choice}"
        cases.append((label, yaml.safe_dump(recipe, allow_unicode=True).encode()))
    for j, raw in enumerate(BROKEN_YAML * 2):
        cases.append(
            (f"broken yaml {j}", raw if j < len(BROKEN_YAML) else raw + b"\n" + bytes([rng.randrange(256)]))
        )
    return cases


def dataset_cases(rng: random.Random) -> list[tuple[str, str, bytes]]:
    """(label, file suffix, file bytes): every one is unusable for format gsm8k with 2 prompts per step."""
    cases = []
    for i in range(N_DATASETS):
        kind = i % 11
        rows = good_rows()
        victim = rng.randrange(len(rows))
        if kind == 0:
            cases.append(
                ("binary", ".jsonl", bytes(rng.randrange(128, 256) for _ in range(rng.randrange(1, 200))))
            )
            continue
        if kind == 1:
            cases.append(
                ("empty", rng.choice([".jsonl", ".json", ".csv"]), rng.choice([b"", b"\n", b"  \n\n"]))
            )
            continue
        if kind == 2:
            text = "".join(json.dumps(r) + "\n" for r in rows)
            cut = rng.randrange(1, len(text) - 2)
            cases.append(("truncated json", ".jsonl", (text[:cut] + "{").encode()))
            continue
        if kind == 3:
            rows[victim].pop(rng.choice(["question", "answer"]))
            label = "missing field"
        elif kind == 4:
            rows[victim][rng.choice(["question", "answer"])] = rng.choice([[1], {"a": 1}, True, None, ""])
            label = "wrong field type"
        elif kind == 5:
            rows[victim]["question"] = rng.choice(["ж", "数", "🙂", "x"]) * rng.randrange(200, 5000)
            label = "huge prompt"
        elif kind == 6:
            rows[victim]["answer"] = rng.choice(["no hashes", "#### ", "####", "🙂 ####   "])
            label = "bad answer"
        elif kind == 7:
            rows = rows[:1]
            label = "fewer rows than prompts_per_step"
        elif kind == 8:
            rows[victim] = rng.choice([[1, 2], "text", 3, None])
            label = "row not an object"
        elif kind == 9:
            # an answer of 5000 digits: JSON parses it, str() of it raises in Python 3.11+
            text = "".join(json.dumps(r) + "\n" for r in rows[:-1])
            text += '{"question": "q", "answer": ' + "9" * 5000 + "}\n"
            cases.append(("huge number", ".jsonl", text.encode()))
            continue
        else:
            blob = "".join(json.dumps(r) + "\n" for r in rows).encode()
            pos = rng.randrange(len(blob))
            cases.append(("invalid utf-8", ".jsonl", blob[:pos] + b"\xc3\x28" + blob[pos:]))
            continue
        suffix = rng.choice([".jsonl", ".json"])
        if suffix == ".jsonl":
            cases.append(
                (label, suffix, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode())
            )
        else:
            cases.append((label, suffix, json.dumps(rows, ensure_ascii=False).encode()))
    return cases


def run_validate(path: Path, capsys) -> tuple[int, str]:
    rc = main(["validate", "--quiet", str(path)])
    return rc, capsys.readouterr().err


def assert_clean_failure(label: str, rc: int, err: str) -> None:
    assert rc == 2, f"{label}: exit {rc}\n{err}"
    assert "Traceback" not in err, f"{label}: traceback\n{err}"
    problems = [line for line in err.splitlines() if line.startswith("  - ")]
    assert err.startswith("error") and len(problems) == 1, f"{label}: not one message\n{err}"


def test_fuzz_malformed_recipes_and_datasets(tmp_path, model_dir, capsys):
    rng = random.Random(SEED)
    good = tmp_path / "good.jsonl"
    good.write_text("".join(json.dumps(r) + "\n" for r in good_rows()))
    total = 0
    for n, (label, raw) in enumerate(recipe_cases(rng, model_dir, good)):
        path = tmp_path / f"r{n}.yaml"
        path.write_bytes(raw)
        rc, err = run_validate(path, capsys)
        assert_clean_failure(label, rc, err)
        total += 1
    for n, (label, suffix, raw) in enumerate(dataset_cases(rng)):
        data = tmp_path / f"d{n}{suffix}"
        data.write_bytes(raw)
        with (
            pytest.raises(DataError)
            if label not in ("huge prompt", "fewer rows than prompts_per_step")
            else _ok()
        ):
            load_dataset_rows(DatasetConfig(source=str(data), format="gsm8k"), tokenizer=None)
        path = tmp_path / f"rd{n}.yaml"
        path.write_text(yaml.safe_dump(base_recipe(model_dir, data), allow_unicode=True))
        rc, err = run_validate(path, capsys)
        assert_clean_failure(label, rc, err)
        total += 1
    assert total >= 200


class _ok:  # a do-nothing context manager for cases the loader accepts (validate rejects them)
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
