"""One registry implementation for every pluggable piece, and the `plugins:` importer (stdlib only).

Estimators, losses, modifiers (`rlvr.algo.registry`), rewards (`rlvr.reward.registry`), dataset formats
(`rlvr.data.loaders`) and weight transports (`rlvr.orchestrate.weight_sync`) are each a `Registry`. A piece is
registered by decorator under a lowercase snake_case name, with optional metadata the driver asks instead of
checking names (e.g. `needs_old_entropy=True`), and is named in a recipe by one of:

* a registered name: `grpo`;
* an import path: `my_pkg.my_mod:fn`;
* a file: `path/to/file.py:fn`, relative to the recipe's directory, else to the cwd.

A miss lists the registered names, with a did-you-mean. `import_plugins` imports the recipe's `plugins:`
(module names or `.py` files) so their decorators run; the driver does it at start-up and hands the same
absolute list to every learner and rollout actor, which import it before anything else.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
IMPORT_RE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
FILE_RE = re.compile(r"^.+\.py:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
MODULE_RE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
FILE_MODULE_PREFIX = "rlvr_plugin_"

SpecKind = Literal["name", "import", "file"]

_FILE_MODULES: dict[str, str] = {}  # module name -> absolute path, for modules loaded from a file
_LOADED_PLUGINS: list[str] = []  # absolute plugin specs imported in this process, in order


class PluginError(ImportError):
    """A plugin module or file that cannot be found or imported; the message names it."""


def spec_kind(spec: str) -> SpecKind | None:
    """ "name", "import" (`pkg.mod:fn`), "file" (`path.py:fn`) or None for anything else."""
    if NAME_RE.match(spec):
        return "name"
    if FILE_RE.match(spec):
        return "file"
    if IMPORT_RE.match(spec):
        return "import"
    return None


def did_you_mean(name: str, names: Iterable[str]) -> str:
    """`"; did you mean X?"` for the closest of `names`, or ""."""
    near = difflib.get_close_matches(name, list(names), n=1)
    return f"; did you mean {near[0]}?" if near else ""


def find_file(path: str, base_dir: str | os.PathLike | None = None) -> Path:
    """The absolute path of `path`: as given if absolute, else under `base_dir`, else under the cwd.

    Raises:
        PluginError: no such file (the message lists the places tried).
    """
    candidates = [Path(path)] if os.path.isabs(path) else []
    if not candidates:
        if base_dir is not None:
            candidates.append(Path(base_dir) / path)
        candidates.append(Path.cwd() / path)
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    raise PluginError(f"file {path!r} not found (tried: {', '.join(str(c) for c in candidates)})")


def load_file_module(path: str | os.PathLike) -> Any:
    """Import a `.py` file once per process under a name derived from its absolute path.

    Raises:
        PluginError: the file does not import (the message names it and the exception).
    """
    path = Path(path).resolve()
    name = FILE_MODULE_PREFIX + hashlib.sha1(str(path).encode()).hexdigest()[:12]
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise PluginError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before exec, so dataclasses and pickling inside the file find it
    _FILE_MODULES[name] = str(path)
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        del sys.modules[name]
        _FILE_MODULES.pop(name, None)
        raise PluginError(f"importing {path} failed: {type(exc).__name__}: {exc}") from exc
    return module


def file_of_module(module_name: str) -> str | None:
    """The file a module was loaded from by `load_file_module`, else None."""
    return _FILE_MODULES.get(module_name)


def import_target(spec: str, base_dir: str | os.PathLike | None = None) -> Any:
    """The object `pkg.mod:attr` or `file.py:attr` names (dotted attributes allowed).

    Raises:
        PluginError: the module or file does not import, or has no such attribute.
    """
    target, attr = spec.rsplit(":", 1)
    if FILE_RE.match(spec):
        module = load_file_module(find_file(target, base_dir))
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise PluginError(f"{spec!r}: cannot import {target!r}: {exc}") from exc
    obj = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise PluginError(f"{spec!r}: {part!r} not found in {getattr(obj, '__name__', obj)}") from None
    return obj


@dataclass(frozen=True)
class Entry:
    """A registered object and the metadata it was registered with."""

    obj: Any
    meta: Mapping[str, Any] = field(default_factory=dict)


class Registry:
    """A named table of pluggable objects.

    Args:
        kind: what it holds, for messages ("advantage estimator").
        error: exception type a miss raises (KeyError unless the caller's domain has its own).
        builtins: modules imported on the first lookup, so the built-in names are always known.
    """

    def __init__(self, kind: str, *, error: type[Exception] = KeyError, builtins: tuple[str, ...] = ()):
        self.kind = kind
        self.error = error
        self._builtins = builtins
        self._builtins_loaded = not builtins
        self._table: dict[str, Entry] = {}

    def register(self, name: str, **meta: Any) -> Callable[[Any], Any]:
        """Decorator registering its target under a lowercase snake_case `name`, with metadata `meta`.

        Raises:
            ValueError: malformed name, or a name already taken by another object.
        """
        if not NAME_RE.match(name):
            raise ValueError(f"{self.kind} name {name!r} must be lowercase snake_case")

        def deco(obj: Any) -> Any:
            old = self._table.get(name)
            if old is not None and _qualified(old.obj) != _qualified(obj):
                raise ValueError(f"{self.kind} {name!r} is already registered to {_qualified(old.obj)}")
            self._table[name] = Entry(obj, dict(meta))
            return obj

        return deco

    def _load_builtins(self) -> None:
        if not self._builtins_loaded:
            self._builtins_loaded = True
            for module in self._builtins:
                importlib.import_module(module)

    def names(self) -> list[str]:
        """Registered names, sorted (built-ins included)."""
        self._load_builtins()
        return sorted(self._table)

    def __contains__(self, name: object) -> bool:
        self._load_builtins()
        return name in self._table

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def unknown_message(self, name: str) -> str:
        """One line for a name that is not registered: the registered names and the closest one."""
        return (
            f"unknown {self.kind} {name!r}; registered {self.kind}s: {', '.join(self.names())}"
            f"{did_you_mean(name, self.names())} (your own: list its module under plugins:, or name it "
            "'pkg.module:fn' / 'path/to/file.py:fn')"
        )

    def entry(self, spec: str, base_dir: str | os.PathLike | None = None) -> Entry:
        """The entry a spec names; an import or file path to a registered object carries its metadata.

        Raises:
            self.error: unknown name, malformed spec, or a path that does not import.
        """
        kind = spec_kind(spec)
        if kind != "name" and kind is not None:
            try:
                obj = import_target(spec, base_dir)
            except PluginError as exc:
                raise self.error(f"{self.kind} {exc}") from exc
            for entry in self._table.values():
                if entry.obj is obj:
                    return entry
            return Entry(obj)
        self._load_builtins()
        if spec not in self._table:
            raise self.error(self.unknown_message(spec))
        return self._table[spec]

    def get(self, spec: str, base_dir: str | os.PathLike | None = None) -> Any:
        """The object a registered name, `pkg.mod:fn` or `file.py:fn` names (see `entry`)."""
        return self.entry(spec, base_dir).obj

    def meta(self, spec: str, key: str, default: Any = None) -> Any:
        """One metadata value of the named entry (`default` when it was not registered with it)."""
        return self.entry(spec).meta.get(key, default)

    def check(self, spec: str, base_dir: str | os.PathLike | None = None) -> str | None:
        """None when `spec` resolves, else the one-line reason (for `rlvr validate`)."""
        try:
            self.entry(spec, base_dir)
        except Exception as exc:  # any failure to resolve is the answer
            return str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
        return None


def _qualified(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}:{getattr(obj, '__qualname__', repr(obj))}"


def plugin_spec(entry: str, base_dir: str | os.PathLike | None = None) -> str:
    """The absolute form of one `plugins:` entry: a module name as is, a `.py` file as its absolute path.

    Raises:
        PluginError: neither a module name nor an existing `.py` file.
    """
    if entry.endswith(".py"):
        return str(find_file(entry, base_dir))
    if not MODULE_RE.match(entry):
        raise PluginError(f"plugin {entry!r} is neither a module name (pkg.module) nor a .py file")
    return entry


def import_plugins(entries: Iterable[str], base_dir: str | os.PathLike | None = None) -> list[str]:
    """Import each plugin (module name or `.py` file) so its `@register_*` decorators run; idempotent.

    Returns:
        The absolute specs, which another process passes back to `import_plugins` to load the same code.

    Raises:
        PluginError: a plugin is missing or fails to import (the message names it).
    """
    specs = [plugin_spec(e, base_dir) for e in entries]
    for spec in specs:
        if spec.endswith(".py"):
            load_file_module(spec)
        else:
            try:
                importlib.import_module(spec)
            except ImportError as exc:
                raise PluginError(f"plugin module {spec!r} does not import: {exc}") from exc
        if spec not in _LOADED_PLUGINS:
            _LOADED_PLUGINS.append(spec)
    return specs


def loaded_plugins() -> list[str]:
    """Absolute specs of the plugins this process imported, in order (what actors should import too)."""
    return list(_LOADED_PLUGINS)
