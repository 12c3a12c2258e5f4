"""Trainer state in a checkpoint: RNG streams and the loop's own counters.

``save_trainer_state`` splits a state dict by top-level key: values that survive a JSON round
trip unchanged (step, data cursor, config hashes, metric history) go to ``trainer_state.json``
so a person can read them; everything else (tensors, RNG states, tuples) goes to
``trainer_state.pt`` via ``torch.save``. Loading merges the two back into one dict.

RNG states are stored as plain Python values and CPU tensors so that ``torch.load`` runs with
``weights_only=True`` (no pickle of arbitrary objects from a checkpoint).

torch is imported inside functions: the CLI imports this package and must start fast.
"""

from __future__ import annotations

import io
import json
import math
import os
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rlvr.checkpoint.atomic import atomic_write_bytes, atomic_write_text

STATE_JSON = "trainer_state.json"
STATE_TENSORS = "trainer_state.pt"


def _as_generators(generators: Any) -> dict[str, Any]:
    if generators is None:
        return {}
    if isinstance(generators, Mapping):
        return dict(generators)
    return {"default": generators}


def capture_rng_state(generators: Any = None) -> dict[str, Any]:
    """Snapshot every RNG stream the training loop draws from.

    Args:
        generators: A ``torch.Generator``, or a mapping name -> ``torch.Generator`` (e.g. the
            data sampler's), whose states are captured too.

    Returns:
        A dict with keys ``python``, ``numpy``, ``torch_cpu``, ``torch_cuda`` (list, empty without
        CUDA) and ``generators``; loadable with ``torch.load(weights_only=True)``.
    """
    import numpy as np
    import torch

    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "kind": str(kind),
            "keys": [int(k) for k in keys],
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch_cpu": torch.get_rng_state(),
        "torch_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "generators": {name: g.get_state() for name, g in _as_generators(generators).items()},
    }
    return state


def restore_rng_state(state: Mapping[str, Any], generators: Any = None) -> None:
    """Restore RNG streams captured by :func:`capture_rng_state`.

    Args:
        state: The captured dict.
        generators: The same generator(s) passed at capture, to restore in place. A name
            captured but not passed is an error (the stream would silently diverge).

    Raises:
        KeyError: A generator passed here has no captured state, or vice versa.
    """
    import numpy as np
    import torch

    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = state["numpy"]
    np.random.set_state(
        (
            np_state["kind"],
            np.asarray(np_state["keys"], dtype=np.uint32),
            np_state["pos"],
            np_state["has_gauss"],
            np_state["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch_cpu"])
    cuda_states = state.get("torch_cuda") or []
    if cuda_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda_states)
    gens = _as_generators(generators)
    saved = state.get("generators", {})
    if set(gens) != set(saved):
        raise KeyError(f"generators passed {sorted(gens)} != generators captured {sorted(saved)}")
    for name, g in gens.items():
        g.set_state(saved[name])


def _json_exact(value: Any) -> bool:
    """True if ``value`` survives a JSON round trip with the same types and values."""

    def same(a: Any, b: Any) -> bool:
        if type(a) is not type(b):
            return False
        if isinstance(a, float):
            return math.isfinite(a) and a == b
        if isinstance(a, dict):
            return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
        if isinstance(a, list):
            return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
        return a == b

    try:
        return same(value, json.loads(json.dumps(value)))
    except (TypeError, ValueError):
        return False


def save_trainer_state(directory: str | os.PathLike, state: Mapping[str, Any]) -> list[Path]:
    """Write the loop's state into a (staged) checkpoint directory.

    Args:
        directory: Checkpoint directory, normally from ``CheckpointManager.stage``.
        state: Top-level keys are strings. JSON-exact values go to ``trainer_state.json``, the
            rest (tensors, RNG states, tuples, non-finite floats) to ``trainer_state.pt``.

    Returns:
        The files written.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    plain: dict[str, Any] = {}
    binary: dict[str, Any] = {}
    for key, value in state.items():
        if not isinstance(key, str):
            raise TypeError(f"trainer state keys must be str, got {key!r}")
        (plain if _json_exact(value) else binary)[key] = value
    written = [atomic_write_text(directory / STATE_JSON, json.dumps(plain, indent=1, sort_keys=True) + "\n")]
    if binary:
        import torch

        buffer = io.BytesIO()
        torch.save(binary, buffer)
        written.append(atomic_write_bytes(directory / STATE_TENSORS, buffer.getvalue()))
    return written


def load_trainer_state(directory: str | os.PathLike) -> dict[str, Any]:
    """Read back what :func:`save_trainer_state` wrote (tensors land on CPU).

    Raises:
        FileNotFoundError: The directory holds no ``trainer_state.json``.
    """
    directory = Path(directory)
    state: dict[str, Any] = json.loads((directory / STATE_JSON).read_text(encoding="utf-8"))
    tensors_file = directory / STATE_TENSORS
    if tensors_file.exists():
        import torch

        state.update(torch.load(tensors_file, map_location="cpu", weights_only=True))
    return state
