"""Name -> function registries for the algorithm library, with import-path plugins.

Every pluggable piece (advantage estimator, policy loss, loss modifier, KL estimator, aggregation) lives in a
`Registry`. Built-ins register themselves with a decorator; users do the same from their own module, or name a
function by import path (`"pkg.mod:fn"`) in the recipe and `Registry.get` imports it on first use.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import Any

_KEY_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_IMPORT_PATH_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def is_import_path(name: str) -> bool:
    """Whether `name` looks like `"pkg.mod:fn"`."""
    return bool(_IMPORT_PATH_RE.match(name))


def import_object(path: str) -> Any:
    """Import `"pkg.mod:attr"` and return the attribute.

    Raises:
        ValueError: if `path` is not of the form `pkg.mod:attr` or the attribute is missing.
        ImportError: if the module cannot be imported.
    """
    if not is_import_path(path):
        raise ValueError(f"{path!r} is not an import path of the form 'pkg.module:function'")
    module_name, attr = path.split(":")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attr)
    except AttributeError as err:
        raise ValueError(f"module {module_name!r} has no attribute {attr!r} (from {path!r})") from err


class Registry:
    """A named table of functions.

    Args:
        kind: what the registry holds, used in error messages (e.g. "advantage estimator").
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._table: dict[str, Callable[..., Any]] = {}

    def register(self, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator registering a function under a lowercase snake_case `name`.

        Raises:
            ValueError: on a malformed name or a name that is already taken.
        """
        if not _KEY_RE.match(name):
            raise ValueError(f"{self.kind} name {name!r} must be lowercase snake_case")

        def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
            if name in self._table and self._table[name] is not fn:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._table[name] = fn
            return fn

        return deco

    def get(self, name: str) -> Callable[..., Any]:
        """Resolve a registered name or an import path (`pkg.mod:fn`) to its function.

        Raises:
            KeyError: unknown name; the message lists the registered names.
        """
        if name in self._table:
            return self._table[name]
        if is_import_path(name):
            fn = import_object(name)
            if not callable(fn):
                raise TypeError(f"{self.kind} {name!r} resolved to a non-callable {type(fn).__name__}")
            return fn
        raise KeyError(
            f"unknown {self.kind} {name!r}; registered: {', '.join(sorted(self._table))} "
            "(or give an import path 'pkg.module:function')"
        )

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._table)

    def __contains__(self, name: object) -> bool:
        return name in self._table


ESTIMATORS = Registry("advantage estimator")
POLICY_LOSSES = Registry("policy loss")
OBJECTIVES = Registry("whole objective")
LOSS_MODIFIERS = Registry("loss modifier")
KL_ESTIMATORS = Registry("KL estimator")
AGGREGATIONS = Registry("loss aggregation")

register_estimator = ESTIMATORS.register
register_policy_loss = POLICY_LOSSES.register
register_objective = OBJECTIVES.register
register_loss_modifier = LOSS_MODIFIERS.register
register_kl_estimator = KL_ESTIMATORS.register
register_aggregation = AGGREGATIONS.register
