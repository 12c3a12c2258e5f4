"""Load a recipe: YAML (+ one `base:` overlay), `a.b.c=value` overrides, validation with readable errors.

Every problem becomes one line naming the dotted key, e.g.::

    rollout.samples_per_promt: unknown key (did you mean 'samples_per_prompt'?)
    train.steps: Input should be a valid integer (got 'ten')
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from rlvr.config.schema import Issue, Recipe, check_recipe

MAX_BASE_DEPTH = 4


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads `1e-6` (no dot) as a float, as YAML 1.2 and users expect."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def _load(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass: no arbitrary objects


class RecipeError(Exception):
    """A recipe could not be loaded; `problems` holds one readable line per problem."""

    def __init__(self, problems: list[str], source: str = "recipe"):
        self.problems = problems
        self.source = source
        super().__init__(f"{source}: " + "; ".join(problems))


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping, turning I/O and syntax errors into a RecipeError."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RecipeError([f"cannot read recipe: {exc.strerror or exc}"], str(path)) from None
    except UnicodeDecodeError as exc:
        raise RecipeError([f"not UTF-8 text (byte {exc.start})"], str(path)) from None
    try:
        data = _load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise RecipeError([f"invalid YAML{where}: {getattr(exc, 'problem', exc)}"], str(path)) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RecipeError([f"top level must be a mapping, got {type(data).__name__}"], str(path))
    return data


def deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """Return `base` updated by `overlay`; nested mappings merge, everything else is replaced."""
    out = dict(base)
    for key, value in overlay.items():
        if (
            isinstance(value, dict)
            and isinstance(out.get(key), dict)
            and not _switches_variant(out[key], value)
        ):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _switches_variant(base: dict[str, Any], overlay: dict[str, Any]) -> bool:
    """An overlay that names another variant (`name:`/`type:`) replaces the section instead of merging into it,
    so `loss: {name: drpo}` over `loss: {name: ppo_clip, eps_high: 0.28}` does not inherit PPO's fields."""
    return any(k in overlay and k in base and overlay[k] != base[k] for k in ("name", "type"))


def resolve_base(path: Path, data: dict[str, Any], depth: int = 0) -> dict[str, Any]:
    """Apply the `base:` chain: the base file (relative to this one) is loaded first, this file overlays it."""
    base_ref = data.pop("base", None)
    if base_ref is None:
        return data
    if not isinstance(base_ref, str):
        raise RecipeError([f"base: must be a file path, got {base_ref!r}"], str(path))
    if depth >= MAX_BASE_DEPTH:
        raise RecipeError([f"base: chain deeper than {MAX_BASE_DEPTH} (a cycle?)"], str(path))
    base_path = (path.parent / base_ref).resolve()
    if not base_path.is_file():
        raise RecipeError([f"base: file not found: {base_ref} (looked at {base_path})"], str(path))
    base = resolve_base(base_path, read_yaml(base_path), depth + 1)
    return deep_merge(base, data)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split `a.b.c=value` into a key path and a YAML-typed value (`8` -> int, `true` -> bool)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise RecipeError([f"override {text!r} is not of the form a.b.c=value"], "command line")
    try:
        value = _load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `a.b.c=value` overrides; list items are addressed by index (`rewards.terms.0.weight=2`)."""
    data = deep_merge({}, data)
    for text in overrides:
        keys, value = parse_override(text)
        node: Any = data
        for i, key in enumerate(keys[:-1]):
            node = _child(node, key, keys[: i + 1], text)
        _assign(node, keys[-1], value, text)
    return data


def _child(node: Any, key: str, path: list[str], text: str) -> Any:
    if isinstance(node, list):
        index = _index(node, key, text)
        return node[index]
    if not isinstance(node, dict):
        raise RecipeError([f"override {text!r}: {'.'.join(path[:-1])} is not a mapping"], "command line")
    if not isinstance(node.get(key), dict | list):
        node[key] = {}
    return node[key]


def _assign(node: Any, key: str, value: Any, text: str) -> None:
    if isinstance(node, list):
        node[_index(node, key, text)] = value
    elif isinstance(node, dict):
        node[key] = value
    else:
        raise RecipeError([f"override {text!r}: parent is not a mapping"], "command line")


def _index(node: list, key: str, text: str) -> int:
    if not key.isdigit() or int(key) >= len(node):
        raise RecipeError(
            [f"override {text!r}: {key!r} is not an index of a {len(node)}-item list"], "command line"
        )
    return int(key)


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """Walk a validation-error location through the schema to the model that owns its last key."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(part)
            if field is None:
                current = _union_member(current, part)
                if current is None:
                    return None
                continue
            current = _unwrap(field.annotation, loc)
        else:
            current = _union_member_from(current, part)
        if current is None:
            return None
    if isinstance(current, type) and issubclass(current, BaseModel):
        return current
    return None


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _models_in(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType, list, tuple, dict):
        return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return []


def _unwrap(annotation: Any, loc: tuple[Any, ...]) -> Any:
    models = _models_in(annotation)
    if len(models) == 1:
        return models[0]
    return models or None


def _union_member_from(candidates: Any, tag: Any) -> type[BaseModel] | None:
    """Pick the union member a discriminated-union location names (by tag or class name)."""
    if not isinstance(candidates, list):
        return None
    for member in candidates:
        if member.__name__ == tag:
            return member
        for field in member.model_fields.values():
            args = typing.get_args(field.annotation)
            if typing.get_origin(field.annotation) is typing.Literal and tag in args:
                return member
    return None


def _union_member(model: type[BaseModel], tag: Any) -> type[BaseModel] | None:
    return None


def _format_error(err: dict[str, Any], model: type[BaseModel]) -> str:
    loc = tuple(err.get("loc", ()))
    key = ".".join(str(p) for p in loc) or "(top level)"
    if err.get("type") == "extra_forbidden":
        owner = _model_at(model, loc)
        hint = ""
        if owner is not None:
            close = difflib.get_close_matches(str(loc[-1]), list(owner.model_fields), n=1, cutoff=0.6)
            hint = (
                f" (did you mean '{close[0]}'?)"
                if close
                else f" (known keys: {', '.join(owner.model_fields)})"
            )
        return f"{key}: unknown key{hint}"
    msg = err.get("msg", "invalid value")
    if err.get("type") == "missing":
        return f"{key}: required key is missing"
    value = err.get("input")
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return f"{key}: {msg} (got {shown})"


def validate_dict(data: dict[str, Any], source: str = "recipe") -> tuple[Recipe, list[Issue]]:
    """Validate a merged recipe mapping; raise RecipeError listing every problem, else return warnings."""
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as exc:
        problems = [_format_error(err, Recipe) for err in exc.errors()]
        raise RecipeError(list(dict.fromkeys(problems)), source) from None
    issues = check_recipe(recipe)
    errors = [str(i) for i in issues if i.level == "error"]
    if errors:
        raise RecipeError(errors, source)
    return recipe, [i for i in issues if i.level != "error"]


def load_recipe_dict(path: str | Path, overrides: list[str] | None = None) -> dict[str, Any]:
    """The resolved (base-merged, overridden) mapping of a recipe file, before validation."""
    path = Path(path)
    data = resolve_base(path.resolve(), read_yaml(path))
    return apply_overrides(data, list(overrides or []))


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> tuple[Recipe, list[Issue]]:
    """Load, merge, override and validate a recipe file. Returns the recipe and any warnings."""
    data = load_recipe_dict(path, overrides)
    return validate_dict(data, str(path))
