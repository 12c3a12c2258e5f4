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

import inspect
import os
from collections.abc import Callable

from rlvr.registry import Registry, file_of_module, find_file, spec_kind
from rlvr.reward.types import RewardError

RewardFn = Callable[..., object]

# Imported on the first name lookup, so `math`, `gsm8k`, `format` are always known. (DAPO's overlong shaping
# is `algorithm.overlong`, one implementation in rlvr.algo.shaping, not a reward term.)
BUILTIN_MODULES = ("rewards.math", "rewards.format")

REWARDS = Registry("reward", error=RewardError, builtins=BUILTIN_MODULES)


def register_reward(name: str, *, shaping: bool = False) -> Callable[[RewardFn], RewardFn]:
    """Register a reward function under a lower_snake_case name.

    Args:
        name: the registry key used in recipes (`fn: name`).
        shaping: True for rewards that shape the score but give no correctness verdict (format,
            length penalties); they are never the primary term.

    Returns:
        A decorator that registers and returns the function unchanged.
    """
    if spec_kind(name) != "name":
        raise ValueError(f"reward names are lower_snake_case, got {name!r}")
    return REWARDS.register(name, shaping=shaping)


def list_rewards() -> list[str]:
    """Sorted registered reward names (built-ins included)."""
    return REWARDS.names()


def _qualified(fn: RewardFn) -> str:
    return f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', repr(fn))}"


def _find_file(path: str, base_dir: str | os.PathLike | None):
    try:
        return find_file(path, base_dir)
    except ImportError as exc:
        raise RewardError(f"reward {exc}") from None


def resolve_reward(spec: str, base_dir: str | os.PathLike | None = None) -> RewardFn:
    """Return the reward function a spec string names.

    Args:
        spec: registered name, `pkg.module:fn`, or `path/to/file.py:fn`.
        base_dir: directory relative file paths are looked up in first (the recipe's directory).

    Raises:
        RewardError: unknown name (the message lists the registered names), import failure,
            missing attribute, not a function.
    """
    fn = REWARDS.get(spec, base_dir)
    if not callable(fn):
        raise RewardError(f"reward {spec!r} is a {type(fn).__name__}, not a function")
    return fn


def is_shaping(spec: str) -> bool:
    """True when `spec` is a registered shaping reward (no verdict)."""
    if spec_kind(spec) != "name" or spec not in REWARDS:
        return False
    return bool(REWARDS.meta(spec, "shaping", False))


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
        kind = spec_kind(spec)
        resolve_reward(spec, base_dir)
        if kind == "file":
            target, attr = spec.rsplit(":", 1)
            return f"{_find_file(target, base_dir)}:{attr}"
        if kind == "name":
            fn = REWARDS.get(spec)
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
    path = file_of_module(module)
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
