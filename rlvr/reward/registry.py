"""Reward registry and resolver: a reward is a plain function named by a string.

A reward function has the signature::

    fn(completion: str, *, answer, **row_fields) -> float | RewardResult

and is named, in a recipe or in code, by one of:

* a registered name: `math` (see `@register_reward`);
* an import path: `my_pkg.my_rewards:brevity`;
* a file: `my_rewards.py:brevity`, relative to the recipe's directory, else to the cwd.

Worker processes receive the spec string (never the function) and resolve it themselves, so a file reward
reaches spawned workers by path. `worker_spec` turns any spec, or a function, into the absolute form
a worker can import, and refuses functions no other process can import (lambdas, closures, `__main__`).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rlvr.config.reward import reward_spec_kind
from rlvr.reward.types import RewardError

RewardFn = Callable[..., object]

# Imported on the first name lookup, so `math`, `format`, `overlong` ... are always known.
BUILTIN_MODULES = ("rewards.math", "rewards.format", "rewards.overlong")


@dataclass(frozen=True)
class RegisteredReward:
    """A registry entry: the function and whether it only shapes the reward (no verdict)."""

    fn: RewardFn
    shaping: bool


_REGISTRY: dict[str, RegisteredReward] = {}
_FILE_MODULES: dict[str, str] = {}  # module name -> absolute file path, for file-loaded rewards
_builtins_loaded = False


def register_reward(name: str, *, shaping: bool = False) -> Callable[[RewardFn], RewardFn]:
    """Register a reward function under a lower_snake_case name.

    Args:
        name: the registry key used in recipes (`fn: name`).
        shaping: True for rewards that shape the score but give no correctness verdict (format,
            length penalties); they are never the primary term.

    Returns:
        A decorator that registers and returns the function unchanged.
    """
    if reward_spec_kind(name) != "name":
        raise ValueError(f"reward names are lower_snake_case, got {name!r}")

    def decorator(fn: RewardFn) -> RewardFn:
        existing = _REGISTRY.get(name)
        if existing is not None and _qualified(existing.fn) != _qualified(fn):
            raise ValueError(f"reward {name!r} is already registered to {_qualified(existing.fn)}")
        _REGISTRY[name] = RegisteredReward(fn=fn, shaping=shaping)
        return fn

    return decorator


def load_builtin_rewards() -> None:
    """Import the built-in reward modules (idempotent)."""
    global _builtins_loaded
    if not _builtins_loaded:
        for module in BUILTIN_MODULES:
            importlib.import_module(module)
        _builtins_loaded = True


def list_rewards() -> list[str]:
    """Sorted registered reward names (built-ins included)."""
    load_builtin_rewards()
    return sorted(_REGISTRY)


def _qualified(fn: RewardFn) -> str:
    return f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', repr(fn))}"


def _find_file(path: str, base_dir: str | os.PathLike | None) -> Path:
    candidates = [Path(path)] if os.path.isabs(path) else []
    if not candidates:
        if base_dir is not None:
            candidates.append(Path(base_dir) / path)
        candidates.append(Path.cwd() / path)
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    tried = ", ".join(str(c) for c in candidates)
    raise RewardError(f"reward file {path!r} not found (tried: {tried})")


def _load_file_module(path: Path) -> object:
    name = "rlvr_reward_file_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise RewardError(f"cannot import reward file {path}")
    module = importlib.util.module_from_spec(spec)
    # Registered before exec so dataclasses / pickling inside the file can find the module.
    sys.modules[name] = module
    _FILE_MODULES[name] = str(path)
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        del sys.modules[name]
        raise RewardError(f"importing reward file {path} failed: {type(exc).__name__}: {exc}") from exc
    return module


def _get_attr(module: object, attr: str, spec: str) -> RewardFn:
    obj = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise RewardError(
                f"reward {spec!r}: {part!r} not found in {getattr(obj, '__name__', obj)}"
            ) from None
    if not callable(obj):
        raise RewardError(f"reward {spec!r} is a {type(obj).__name__}, not a function")
    return obj


def resolve_reward(spec: str, base_dir: str | os.PathLike | None = None) -> RewardFn:
    """Return the reward function a spec string names.

    Args:
        spec: registered name, `pkg.module:fn`, or `path/to/file.py:fn`.
        base_dir: directory relative file paths are looked up in first (the recipe's directory).

    Raises:
        RewardError: unknown name (the message lists the registered names), import failure,
            missing attribute.
    """
    kind = reward_spec_kind(spec)
    if kind == "name":
        load_builtin_rewards()
        if spec not in _REGISTRY:
            raise RewardError(
                f"unknown reward {spec!r}; registered rewards: {', '.join(sorted(_REGISTRY))}. "
                "Use 'pkg.module:fn' or 'path/to/file.py:fn' for your own."
            )
        return _REGISTRY[spec].fn
    target, attr = spec.rsplit(":", 1)
    if kind == "file":
        return _get_attr(_load_file_module(_find_file(target, base_dir)), attr, spec)
    try:
        module = importlib.import_module(target)
    except ImportError as exc:
        raise RewardError(f"reward {spec!r}: cannot import {target!r}: {exc}") from exc
    return _get_attr(module, attr, spec)


def is_shaping(spec: str) -> bool:
    """True when `spec` is a registered shaping reward (no verdict)."""
    if reward_spec_kind(spec) != "name":
        return False
    load_builtin_rewards()
    entry = _REGISTRY.get(spec)
    return bool(entry and entry.shaping)


def worker_spec(spec: str | RewardFn, base_dir: str | os.PathLike | None = None) -> str:
    """The spec a spawned worker resolves to the same function: absolute file paths, names kept.

    Args:
        spec: a spec string or a function object (programmatic use).
        base_dir: the recipe directory for relative file paths.

    Raises:
        RewardError: the function cannot be imported by another process (lambda, nested function,
            defined in `__main__`), naming the function.
    """
    if isinstance(spec, str):
        kind = reward_spec_kind(spec)
        resolve_reward(spec, base_dir)
        if kind == "file":
            target, attr = spec.rsplit(":", 1)
            return f"{_find_file(target, base_dir)}:{attr}"
        if kind == "name":
            fn = _REGISTRY[spec].fn
            if fn.__module__ not in BUILTIN_MODULES:
                return worker_spec(fn)
        return spec
    fn = spec
    label = _qualified(fn)
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    problem = None
    if module is None or qualname is None:
        problem = "it has no __module__/__qualname__ (use a plain module-level function)"
    elif "<lambda>" in qualname or "<locals>" in qualname:
        problem = "it is a lambda or nested function, which worker processes cannot import (not picklable)"
    elif module in ("__main__", "__mp_main__"):
        problem = "it is defined in __main__; move it to a file and name it as 'path/to/file.py:fn'"
    if problem:
        raise RewardError(f"reward {label} cannot be sent to the worker pool: {problem}")
    path = _FILE_MODULES.get(module)
    out = f"{path}:{qualname}" if path else f"{module}:{qualname}"
    try:
        same = resolve_reward(out) is fn
    except RewardError as exc:
        raise RewardError(f"reward {label} cannot be sent to the worker pool: {exc}") from exc
    if not same:
        raise RewardError(f"reward {label} cannot be sent to the worker pool: {out} names another object")
    return out


def accepts_row_fields(fn: RewardFn) -> bool:
    """True when `fn` can be called as `fn(completion, answer=..., **row_fields)`."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
