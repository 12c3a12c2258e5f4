"""Guard: every leaf key of the recipe schema is read by something outside `rlvr/config/`.

A key that validates but is never read is a knob that silently does nothing. The check is static (AST):

- Sections read as objects (everything but `algorithm`): the leaf must be read as an attribute of its own
  section, e.g. `recipe.model.dtype`, `cfg.timeout_s` after `cfg = self.recipe.rollout.sync`, `self.config.x`
  after `self.config = config` with `config: RolloutConfig`, or `term.fn` for `for term in cfg.terms`. An
  attribute with the same name on another object (`tensor.dtype`) does not count.
- A method or property of a section (`model.resolved_dtype()`, `recipe.run_dir`) reads the fields its body
  reads as `self.<field>`, when something outside calls it. A keyword argument (`wandb_cfg=r.logging.wandb`)
  makes its name an alias in every file.
- The `algorithm` section reaches `rlvr.algo` as plain dicts (`AlgorithmConfig.to_spec`), so a leaf there is
  read when its key appears as a string (`spec.get("as")`), a keyword parameter (`def grpo(..., eps=...)`) or
  an attribute.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections import defaultdict
from pathlib import Path

from pydantic import BaseModel

from rlvr.config import Recipe
from rlvr.config.algorithm import AlgorithmConfig
from rlvr.config.loader import _models_in

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [p for d in ("rlvr", "rewards") for p in sorted((ROOT / d).rglob("*.py"))]
SOURCES = [p for p in SOURCES if (ROOT / "rlvr" / "config") not in p.parents]

# Dotted key -> why it counts as read although the scan cannot see it.
ALLOWED: dict[str, str] = {}


def schema_leaves() -> tuple[list[tuple[str, type, str, bool]], dict[str, set[type]]]:
    """(dotted key, owner model, attribute name, read-as-dict) for every leaf; field name -> section models."""
    leaves: list[tuple[str, type, str, bool]] = []
    holders: dict[str, set[type]] = defaultdict(set)

    def walk(model: type[BaseModel], prefix: str, as_dict: bool, seen: tuple) -> None:
        for attr, field in model.model_fields.items():
            key = field.alias or attr
            subs = [m for m in _models_in(field.annotation) if m not in seen]
            if subs:
                holders[attr].update(subs)
                for sub in subs:
                    walk(sub, f"{prefix}{key}.", as_dict or sub is AlgorithmConfig, (*seen, sub))
            else:
                leaves.append((f"{prefix}{key}", model, attr, as_dict))

    walk(Recipe, "", False, (Recipe,))
    return list(dict.fromkeys(leaves)), holders


class _Reads(ast.NodeVisitor):
    """Attribute reads of schema sections in one file, with file-level aliases of section objects."""

    def __init__(
        self, holders: dict[str, set[type]], classes: dict[str, type], aliases: dict[str, set[type]]
    ) -> None:
        self.holders, self.classes = holders, classes
        self.aliases: dict[str, set[type]] = defaultdict(set, {k: set(v) for k, v in aliases.items()})
        self.reads: set[tuple[type, str]] = set()
        self.words: set[str] = set()
        self.keyword_aliases: dict[str, set[type]] = defaultdict(set)

    def resolve(self, node: ast.AST) -> set[type]:
        text = ast.unparse(node)
        if text in self.aliases:
            return self.aliases[text]
        if isinstance(node, ast.Subscript):
            return self.resolve(node.value)
        if text == "recipe" or text.endswith(".recipe"):
            return {Recipe}
        if isinstance(node, ast.Attribute):
            return self.holders.get(node.attr, set())
        return set()

    def collect_aliases(self, tree: ast.AST) -> None:
        for _ in range(3):  # aliases of aliases (`r = self.recipe`, `res = r.resources`)
            for node in ast.walk(tree):
                if isinstance(node, ast.arg) and node.annotation is not None:
                    ann = ast.unparse(node.annotation)
                    self.aliases[node.arg] |= {c for n, c in self.classes.items() if n in ann.split(".")[-1]}
                elif isinstance(node, ast.Assign | ast.AnnAssign):
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    found = self.resolve(node.value) if node.value is not None else set()
                    for target in targets:
                        self.aliases[ast.unparse(target)] |= found
                elif isinstance(node, ast.For | ast.comprehension):
                    self.aliases[ast.unparse(node.target)] |= self.resolve(node.iter)
                elif isinstance(node, ast.keyword) and node.arg:
                    self.keyword_aliases[node.arg] |= self.resolve(node.value)
        self.aliases = defaultdict(set, {k: v for k, v in self.aliases.items() if v})

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self.words.add(node.attr)
        for cls in self.resolve(node.value):
            self.reads.add((cls, node.attr))
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        is_getattr = isinstance(node.func, ast.Name) and node.func.id in ("getattr", "hasattr")
        if is_getattr and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant):
            for cls in self.resolve(node.args[0]):
                self.reads.add((cls, node.args[1].value))
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str):
            self.words.add(node.value)

    def visit_arg(self, node: ast.arg) -> None:
        self.words.add(node.arg)
        self.generic_visit(node)

    def visit_keyword(self, node: ast.keyword) -> None:
        if node.arg:
            self.words.add(node.arg)
        self.generic_visit(node)


def _method_reads(cls: type, name: str, holders, classes) -> set[tuple[type, str]]:
    """What a section's own method/property reads through `self` (`self.logging.run_dir` in `run_dir`)."""
    member = inspect.getattr_static(cls, name, None)
    func = member.fget if isinstance(member, property) else member
    if not inspect.isfunction(func):
        return set()
    visitor = _Reads(holders, classes, {"self": {cls}})
    visitor.visit(ast.parse(textwrap.dedent(inspect.getsource(func))))
    return visitor.reads


def dead_keys(sources: list[Path]) -> list[str]:
    """Schema leaves no source file reads (minus the allow-list)."""
    leaves, holders = schema_leaves()
    classes = {cls.__name__: cls for group in holders.values() for cls in group} | {"Recipe": Recipe}
    trees = [ast.parse(path.read_text(), str(path)) for path in sources]
    shared: dict[str, set[type]] = defaultdict(set)
    for tree in trees:  # keyword-argument aliases cross files (`wandb_cfg=r.logging.wandb`)
        visitor = _Reads(holders, classes, {})
        visitor.collect_aliases(tree)
        for name, found in visitor.keyword_aliases.items():
            shared[name] |= found
    reads: set[tuple[type, str]] = set()
    words: set[str] = set()
    for tree in trees:
        visitor = _Reads(holders, classes, shared)
        visitor.collect_aliases(tree)
        visitor.visit(tree)
        reads |= visitor.reads
        words |= visitor.words
    for cls, name in list(reads):  # a section method called from outside reads what its body reads
        reads |= _method_reads(cls, name, holders, classes)
    dead = []
    for key, owner, attr, as_dict in leaves:
        read = (owner, attr) in reads or (as_dict and key.rsplit(".", 1)[-1] in words | {a for _, a in reads})
        if not read and key not in ALLOWED:
            dead.append(f"{key} ({owner.__name__}.{attr})")
    return dead


def test_every_recipe_key_is_read_outside_the_schema():
    dead = dead_keys(SOURCES)
    assert not dead, "recipe keys that nothing reads (wire them or delete them): " + ", ".join(dead)


def test_allow_list_names_real_keys_with_reasons():
    keys = {key for key, *_ in schema_leaves()[0]}
    assert all(key in keys and reason for key, reason in ALLOWED.items())


def test_the_scan_tells_a_section_read_from_a_same_named_attribute(tmp_path):
    src = tmp_path / "use.py"
    src.write_text(
        "def f(recipe, t):\n"
        "    cfg = recipe.rollout.sync\n"
        "    return cfg.timeout_s, t.dtype, recipe.model.path\n"
    )
    dead = dead_keys([src])
    assert "rollout.sync.timeout_s (SyncConfig.timeout_s)" not in dead
    assert "model.path (ModelConfig.path)" not in dead
    assert "model.dtype (ModelConfig.dtype)" in dead
