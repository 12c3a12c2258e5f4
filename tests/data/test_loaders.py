"""Loaders: every schema adapter on small fixture files, formatting, and bad-row errors."""

from __future__ import annotations

import json

import pytest

from rlvr.config.data import DataConfig, DatasetConfig
from rlvr.data.loaders import FORMATS, DataError, load_dataset_rows
from rlvr.tiny.tokenizer import build_tokenizer


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_gsm8k_answer_after_hashes(tmp_path):
    src = _jsonl(
        tmp_path / "gsm.jsonl",
        [
            {"question": "Tom has 3 apples...", "answer": "3+4=7\n#### 1,007"},
            {"question": "Q2", "answer": "so\n#### -2"},
        ],
    )
    rows = load_dataset_rows(DatasetConfig(source=src, format="gsm8k", template="plain"))
    assert [r["answer"] for r in rows] == ["1007", "-2"]
    assert rows[0]["prompt"] == "Tom has 3 apples..."
    assert rows[1]["index"] == 1


def test_math_uses_answer_or_last_boxed_of_solution(tmp_path):
    import datasets

    path = tmp_path / "math.parquet"
    datasets.Dataset.from_list(
        [
            {"problem": "P1", "solution": "x \\boxed{1} y \\boxed{\\frac{1}{2}}", "answer": None},
            {"problem": "P2", "solution": "no box", "answer": "42"},
        ]
    ).to_parquet(str(path))
    rows = load_dataset_rows(DatasetConfig(source=str(path), format="math", template="plain"))
    assert [r["answer"] for r in rows] == ["\\frac{1}{2}", "42"]


def test_aime_integer_answers_and_chat_template(tmp_path):
    src = _jsonl(tmp_path / "aime.jsonl", [{"problem": "Find n.", "answer": 204}])
    tok = build_tokenizer()
    rows = load_dataset_rows(
        DatasetConfig(source=src, format="aime", system_prompt="Be brief."), tokenizer=tok
    )
    assert rows[0]["answer"] == "204"
    assert rows[0]["prompt"] == "<|system|>Be brief.<|im_end|><|user|>Find n.<|im_end|><|assistant|>"
    assert rows[0]["messages"][-1] == {"role": "user", "content": "Find n."}


def test_generic_keys_shuffle_and_limit(tmp_path):
    src = _jsonl(tmp_path / "g.jsonl", [{"q": f"q{i}", "a": i} for i in range(10)])
    cfg = DatasetConfig(
        source=src, format="generic", prompt_key="q", answer_key="a", shuffle=True, seed=1, limit=4
    )
    rows = load_dataset_rows(cfg)
    again = load_dataset_rows(cfg)
    assert len(rows) == 4 and rows == again
    assert [r["question"] for r in rows] != ["q0", "q1", "q2", "q3"]
    with pytest.raises(ValueError, match="prompt_key"):
        DatasetConfig(source=src, format="generic")


def test_synthetic_source_and_files_written_by_build(tmp_path):
    rows = load_dataset_rows(DatasetConfig(split="test", template="plain", limit=5))
    assert len(rows) == 5 and all(
        r["data_source"] == "synthetic" and "difficulty" in r and r["prompt_style"] in ("plain", "question")
        for r in rows
    )
    from rlvr.data.synthetic import canonical_split, write_jsonl

    path = write_jsonl([p.row() for p in canonical_split("test")[:5]], tmp_path / "test.jsonl")
    from_file = load_dataset_rows(DatasetConfig(source=str(path), template="plain"))
    assert [r["answer"] for r in from_file] == [r["answer"] for r in rows]


@pytest.mark.parametrize(
    ("fmt", "rows", "needle"),
    [
        (
            "gsm8k",
            [{"question": "ok", "answer": "#### 1"}, {"question": "", "answer": "#### 2"}],
            "row 1: field 'question' is missing or empty",
        ),
        ("gsm8k", [{"question": "ok", "answer": "no hashes"}], "row 0: field 'answer' has no '####"),
        (
            "math",
            [{"problem": "p", "solution": "s", "answer": "1"}, {"solution": "s", "answer": "2"}],
            "row 1: missing field 'problem'",  # a key absent from a JSON line
        ),
        ("aime", [{"problem": "p", "answer": None}], "row 0: field 'answer' is missing or empty"),
        (
            "synthetic",
            [{"prompt": "1+1", "answer": "2"}, {"prompt": "2+2", "answer": " "}],
            "row 1: field 'answer' is missing or empty",
        ),
    ],
)
def test_bad_row_names_file_and_index(tmp_path, fmt, rows, needle):
    src = _jsonl(tmp_path / f"{fmt}.jsonl", rows)
    with pytest.raises(DataError) as err:
        load_dataset_rows(DatasetConfig(source=src, format=fmt, template="plain"))
    assert needle in str(err.value) and src in str(err.value)


def test_unknown_format_and_missing_file(tmp_path):
    with pytest.raises(DataError, match="registered"):
        load_dataset_rows(DatasetConfig(source=str(tmp_path / "x.jsonl"), format="nope"))
    with pytest.raises(DataError, match="not found"):
        load_dataset_rows(DatasetConfig(source=str(tmp_path / "x.jsonl"), format="aime"))
    assert {"gsm8k", "math", "aime", "generic", "synthetic"} <= set(FORMATS)


def test_default_data_config_is_synthetic_train_and_test():
    cfg = DataConfig()
    assert (cfg.train.source, cfg.train.split, cfg.train.shuffle) == ("synthetic", "train", True)
    assert cfg.eval is not None and cfg.eval.split == "test"
    with pytest.raises(ValueError):
        DataConfig(train={"source": "x", "unknown": 1})


def test_kept_columns_never_shadow_a_builtin_reward_setting():
    # row fields reach reward functions as keyword arguments: a kept column named like a reward's setting
    # (e.g. `style`) would silently override it on every row
    import inspect

    from rlvr.data.loaders import KEPT_COLUMNS
    from rlvr.reward.registry import list_rewards, resolve_reward

    for name in list_rewards():
        params = inspect.signature(resolve_reward(name)).parameters
        assert not set(KEPT_COLUMNS) & set(params), (name, sorted(params))


def test_local_files_without_the_datasets_library(tmp_path):
    """jsonl with a byte-order mark, a .json list, a .json of columns, csv and parquet load alike."""
    import pyarrow
    import pyarrow.parquet

    rows = [{"question": "Q1", "answer": "#### 1"}, {"question": "Q2", "answer": "#### 2"}]
    (tmp_path / "a.jsonl").write_bytes(b"\xef\xbb\xbf" + "".join(json.dumps(r) + "\n" for r in rows).encode())
    (tmp_path / "b.json").write_text(json.dumps(rows))
    (tmp_path / "c.json").write_text(json.dumps({"question": ["Q1", "Q2"], "answer": ["#### 1", "#### 2"]}))
    (tmp_path / "d.csv").write_text('question,answer\nQ1,#### 1\nQ2,"#### 2"\n')
    pyarrow.parquet.write_table(pyarrow.Table.from_pylist(rows), tmp_path / "e.parquet")
    for name in ("a.jsonl", "b.json", "c.json", "d.csv", "e.parquet"):
        cfg = DatasetConfig(source=str(tmp_path / name), format="gsm8k", template="plain")
        assert [(r["question"], r["answer"]) for r in load_dataset_rows(cfg)] == [("Q1", "1"), ("Q2", "2")], (
            name
        )
