"""RNG capture/restore and trainer-state save/load round trips."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from rlvr.checkpoint import capture_rng_state, load_trainer_state, restore_rng_state, save_trainer_state


def draw(gen: torch.Generator) -> tuple:
    return (
        [random.random() for _ in range(3)],
        random.gauss(0, 1),
        np.random.rand(3).tolist(),
        np.random.normal(size=2).tolist(),
        torch.rand(3).tolist(),
        torch.randint(0, 1000, (3,), generator=gen).tolist(),
    )


def test_restore_replays_the_same_draws():
    gen = torch.Generator().manual_seed(7)
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    draw(gen)  # move every stream off its seed state
    np.random.normal()  # leave a cached gaussian in numpy's state
    state = capture_rng_state(gen)
    expected = draw(gen)
    draw(gen)
    restore_rng_state(state, gen)
    assert draw(gen) == expected


def test_named_generators_and_mismatch():
    gens = {"data": torch.Generator().manual_seed(1), "dropout": torch.Generator().manual_seed(2)}
    state = capture_rng_state(gens)
    first = {k: torch.rand(2, generator=g).tolist() for k, g in gens.items()}
    restore_rng_state(state, gens)
    assert {k: torch.rand(2, generator=g).tolist() for k, g in gens.items()} == first
    with pytest.raises(KeyError, match="dropout"):
        restore_rng_state(state, {"data": gens["data"]})


def test_rng_state_survives_save_load(tmp_path):
    gen = torch.Generator().manual_seed(11)
    random.seed(5), np.random.seed(5), torch.manual_seed(5)
    save_trainer_state(tmp_path, {"step": 3, "rng": capture_rng_state(gen)})
    expected = draw(gen)
    random.seed(99), np.random.seed(99), torch.manual_seed(99), gen.manual_seed(99)
    restore_rng_state(load_trainer_state(tmp_path)["rng"], gen)
    assert draw(gen) == expected


def test_trainer_state_split_and_round_trip(tmp_path):
    state = {
        "step": 12,
        "epoch": 1,
        "data_cursor": {"epoch": 1, "index": 37, "order_seed": 4},
        "history": [{"step": 1, "reward/mean": 0.25}],
        "name": "run",
        "best": None,
        "ema": torch.arange(4, dtype=torch.float32),
        "pair": (1, 2),
        "nan": float("nan"),
    }
    written = save_trainer_state(tmp_path, state)
    assert sorted(p.name for p in written) == ["trainer_state.json", "trainer_state.pt"]
    plain = json.loads((tmp_path / "trainer_state.json").read_text())
    assert set(plain) == {"step", "epoch", "data_cursor", "history", "name", "best"}
    loaded = load_trainer_state(tmp_path)
    assert set(loaded) == set(state)
    assert torch.equal(loaded["ema"], state["ema"])
    assert loaded["pair"] == (1, 2)
    assert loaded["nan"] != loaded["nan"]
    assert {k: loaded[k] for k in plain} == {k: state[k] for k in plain}


def test_plain_state_writes_json_only(tmp_path):
    written = save_trainer_state(tmp_path, {"step": 1})
    assert [p.name for p in written] == ["trainer_state.json"]
    assert load_trainer_state(tmp_path) == {"step": 1}
    with pytest.raises(FileNotFoundError):
        load_trainer_state(tmp_path / "missing")
