"""The one registry implementation (`rlvr.registry`): names, import paths, file paths, metadata, misses, plugins."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rlvr.registry import PluginError, Registry, import_plugins, loaded_plugins, spec_kind

PLUGIN = """
from tests_registry_table import TABLE


@TABLE.register("from_file", needs_reference=True)
def from_file():
    return "file"
"""


@pytest.fixture
def table(monkeypatch, tmp_path) -> Registry:
    """A fresh registry a plugin file can import as `tests_registry_table.TABLE`."""
    reg = Registry("widget")
    module = type(sys)("tests_registry_table")
    module.TABLE = reg
    monkeypatch.setitem(sys.modules, "tests_registry_table", module)
    return reg


@pytest.mark.parametrize(
    ("spec", "kind"),
    [("grpo", "name"), ("pkg.mod:fn", "import"), ("dir/my file.py:fn", "file"), ("/a/b.py:C.fn", "file")],
)
def test_spec_kinds(spec, kind):
    assert spec_kind(spec) == kind


@pytest.mark.parametrize("bad", ["Grpo", "pkg.mod", "x.py", "a-b", ""])
def test_malformed_specs_have_no_kind(bad):
    assert spec_kind(bad) is None


def test_lookup_by_name_import_path_and_file_relative_to_the_recipe(table, tmp_path):
    @table.register("double", needs_old_entropy=True)
    def double(x):
        return 2 * x

    assert table.get("double") is double
    assert table.meta("double", "needs_old_entropy") is True
    assert table.meta("double", "needs_reference", False) is False
    assert table.get("os.path:join").__name__ == "join"
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "mine.py").write_text(PLUGIN)
    fn = table.get("sub/mine.py:from_file", tmp_path)  # importing the file registers `from_file`
    assert fn() == "file" and table.get("from_file") is fn
    # a path to a registered object carries the metadata it was registered with
    assert table.entry("sub/mine.py:from_file", tmp_path).meta == {"needs_reference": True}
    assert "from_file" in table and "from_file" in list(table)


def test_a_miss_lists_the_names_and_the_closest_one(table):
    table.register("alpha")(len)
    table.register("beta")(max)
    with pytest.raises(
        KeyError, match=r"unknown widget 'alpah'; registered widgets: alpha, beta; did you mean alpha"
    ):
        table.get("alpah")
    with pytest.raises(KeyError, match="registered widgets: alpha, beta"):
        table.get("Not A Name")
    with pytest.raises(KeyError, match="'nope' not found"):
        table.get("os.path:nope")
    with pytest.raises(KeyError, match="cannot import"):
        table.get("no_such_pkg_xyz:fn")
    assert "did you mean beta" in table.check("betaa")
    assert table.check("alpha") is None


def test_registration_rules(table):
    with pytest.raises(ValueError, match="snake_case"):
        table.register("Bad-Name")
    table.register("ok")(len)
    table.register("ok")(len)  # the same object again (a re-imported module) is fine
    with pytest.raises(ValueError, match="already registered to builtins:len"):
        table.register("ok")(max)


def test_builtins_load_on_first_lookup():
    reg = Registry("reward", builtins=("rewards.math",))
    assert reg.names() == []  # its own table: the module registers into the reward registry, not this one
    from rlvr.reward.registry import REWARDS

    assert {"math", "format"} <= set(REWARDS.names())


def test_a_miss_raises_the_callers_error_type():
    class DomainError(Exception):
        pass

    with pytest.raises(DomainError, match="unknown thing 'x'"):
        Registry("thing", error=DomainError).get("x")


def test_plugins_import_once_and_are_recorded_as_absolute_specs(table, tmp_path):
    (tmp_path / "plug.py").write_text(PLUGIN)
    specs = import_plugins(["plug.py", "json"], tmp_path)
    assert specs == [str((tmp_path / "plug.py").resolve()), "json"]
    assert import_plugins(specs) == specs  # what an actor does with the driver's list: idempotent
    assert loaded_plugins()[-2:] == specs
    assert table.get("from_file")() == "file"
    with pytest.raises(PluginError, match="not found"):
        import_plugins(["missing.py"], tmp_path)
    (tmp_path / "broken.py").write_text("raise RuntimeError('boom')\n")
    with pytest.raises(PluginError, match="RuntimeError: boom"):
        import_plugins(["broken.py"], tmp_path)
    with pytest.raises(PluginError, match="neither a module name"):
        import_plugins(["not a module"], tmp_path)


def test_the_registry_is_stdlib_only_so_the_algorithm_library_stays_pure_torch():
    code = (
        "import sys; import rlvr.registry; "
        "bad = {m for m in ('torch', 'pydantic', 'ray', 'yaml') if m in sys.modules}; assert not bad, bad; "
        "import rlvr.algo; "
        "bad = {m for m in ('pydantic', 'ray', 'rlvr.config') if m in sys.modules}; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
