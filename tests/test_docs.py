"""The README and docs/ say only what is true of this repository.

Guards, each run on the current files and on a known-bad sample:
- no line carries shell residue (heredoc markers, redirections into a doc, `sed -n ...p`, `wc -l README.md`);
- every `rlvr ...` line in a code fence parses with the real CLI parser (and a named recipe loads with its
  overrides); every ```yaml fence, merged onto the quickstart recipe, validates;
- every repository path named in README/docs/launch/docker exists, or is one the quickstart writes, or is an
  allow-listed user-side placeholder;
- no file points at documents outside the repository.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import re
import shlex
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
LAUNCH = sorted(p for d in ("launch", "docker") for p in (ROOT / d).iterdir() if p.is_file())

RESIDUE = {
    "heredoc": re.compile(r"<<-?\s*['\"]?[A-Z_]{2,}['\"]?"),
    "bare heredoc terminator": re.compile(r"^\s*(EOF|EOT|END|HEREDOC)\s*$"),
    "redirection into a doc": re.compile(r">>?\s*\S*\.(md|rst|txt)\b"),
    "cat into a file": re.compile(r"\bcat\s+>"),
    "sed print range": re.compile(r"\bsed\s+-n\s+['\"]?\d+,\d+p"),
    "wc on a doc": re.compile(r"\bwc\s+-[lwc]\s+\S*\.md\b"),
    "tee into a doc": re.compile(r"\btee\s+(-a\s+)?\S*\.md\b"),
}

# Repository-rooted paths: a top-level folder of this repo, or one a run writes (runs/, out/, data/).
PATH_RE = re.compile(
    r"(?<![\w./$~-])((?:recipes|launch|docker|docs|scripts|rlvr|rewards|bench|tests|\.ci|runs|data|out)/[\w.\-/]*)"
)
LINK_RE = re.compile(r"\]\(([^)\s]+)\)")

# User-side placeholders the docs name on purpose; each would be a file on the user's machine.
PLACEHOLDERS = {
    "data/gsm8k_test.jsonl": "README's data example: a local GSM8K test file the user brings",
    "data/math500.jsonl": "README's eval example: a local MATH-500 file the user brings",
    "out/": "export destination; `rlvr export` creates it",
}

POINTER_PATTERNS = re.compile(
    r"\.\./shared|/work/shared|shared/spec|shared notes|cpu-stack|(?<!docs/)algorithms\.md\s*§", re.IGNORECASE
)
SKIP_DIRS = {".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache", "runs", "node_modules"}


# ---- helpers ------------------------------------------------------------------------------------------------


def fenced_blocks(text: str) -> list[tuple[int, str, list[str]]]:
    """(first line number, info string, lines) of every ``` code fence."""
    blocks, inside, info, start, lines = [], False, "", 0, []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("```"):
            if inside:
                blocks.append((start, info, lines))
                inside = False
            else:
                inside, info, start, lines = True, stripped[3:].strip(), number + 1, []
        elif inside:
            lines.append(line)
    return blocks


def command_lines(lines: list[str]) -> list[str]:
    """Shell lines with ``\\`` continuations joined and a leading ``$ `` prompt removed."""
    out, pending = [], ""
    for line in lines:
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        out.append((pending + line).strip().removeprefix("$ "))
        pending = ""
    if pending:
        out.append(pending.strip())
    return out


def residue_problems(text: str, name: str) -> list[str]:
    return [
        f"{name}:{number}: {kind}: {line.strip()!r}"
        for number, line in enumerate(text.splitlines(), 1)
        for kind, pattern in RESIDUE.items()
        if pattern.search(line)
    ]


@functools.cache
def cli_parser():
    from rlvr.cli import build_parser

    return build_parser()


def cli_problems(text: str, name: str) -> list[str]:
    problems = []
    for start, info, lines in fenced_blocks(text):
        if info not in ("", "bash", "sh", "shell", "console"):
            continue
        for line in command_lines(lines):
            try:
                words = shlex.split(line, comments=True)
            except ValueError as exc:
                problems.append(f"{name}:{start}: cannot split {line!r}: {exc}")
                continue
            if not words or words[0] != "rlvr":
                continue
            err = io.StringIO()
            try:
                with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                    args = cli_parser().parse_args(words[1:])
            except SystemExit:
                problems.append(f"{name}:{start}: {line!r} does not parse: {err.getvalue().strip()}")
                continue
            problems += recipe_problems(args, line, f"{name}:{start}")
    return problems


def recipe_problems(args, line: str, where: str) -> list[str]:
    """A `train`/`validate` line whose recipe is in the repo must load with its overrides."""
    recipe = getattr(args, "recipe", None)
    if args.command not in ("train", "validate") or recipe is None or not (ROOT / recipe).is_file():
        return []
    from rlvr.config.loader import load_recipe

    try:
        _, issues = load_recipe(ROOT / recipe, list(args.overrides))
    except Exception as exc:  # RecipeError carries the key; anything else is a broken example too
        return [f"{where}: {line!r}: {exc}"]
    return [f"{where}: {line!r}: {i}" for i in issues if i.level == "error"]


def yaml_problems(text: str, name: str) -> list[str]:
    """Every ```yaml fence is a recipe fragment: merged onto the quickstart recipe, it must validate."""
    from rlvr.config.loader import deep_merge, read_yaml, resolve_base, validate_dict

    quickstart = ROOT / "recipes/quickstart.yaml"
    base = resolve_base(quickstart, read_yaml(quickstart))
    problems = []
    for start, info, lines in fenced_blocks(text):
        if info not in ("yaml", "yml"):
            continue
        try:
            _, issues = validate_dict(deep_merge(base, yaml.safe_load("\n".join(lines))), f"{name}:{start}")
        except Exception as exc:  # RecipeError names the key; a YAML error the line
            problems.append(f"{name}:{start}: {exc}")
            continue
        problems += [f"{name}:{start}: {i}" for i in issues if i.level == "error"]
    return problems


def quickstart_outputs() -> tuple[str, set[int]]:
    """The quickstart's run directory and the steps it writes checkpoints at."""
    recipe = yaml.safe_load((ROOT / "recipes/quickstart.yaml").read_text())
    steps = recipe["train"]["steps"]
    every = recipe["checkpoint"]["every_steps"]
    # A checkpoint every `every_steps`, and always one at the end.
    return f"runs/{recipe['name']}", set(range(every, steps + 1, every)) | {steps}


def path_ok(path: str) -> bool:
    path = path.rstrip(".,;:")
    if (ROOT / path).exists() or any(path.startswith(p) for p in PLACEHOLDERS):
        return True
    run_dir, steps = quickstart_outputs()
    rest = path.rstrip("/").removeprefix(run_dir)
    if rest == path.rstrip("/"):
        return False
    if rest in ("", "/checkpoints", "/checkpoints/latest", "/metrics.jsonl", "/plots"):
        return True
    match = re.fullmatch(r"/checkpoints/step_(\d{6})", rest)
    return bool(match) and int(match.group(1)) in steps


def path_problems(text: str, source: Path) -> list[str]:
    name = source.relative_to(ROOT)
    problems = []
    for number, line in enumerate(text.splitlines(), 1):
        for path in dict.fromkeys(PATH_RE.findall(line)):
            if not path_ok(path):
                problems.append(f"{name}:{number}: {path!r} is not in the repository")
        if source.suffix == ".md":
            for target in dict.fromkeys(LINK_RE.findall(line)):
                target = target.split("#")[0]
                if target and "://" not in target and not (source.parent / target).exists():
                    problems.append(f"{name}:{number}: link {target!r} leads nowhere")
    return list(dict.fromkeys(problems))


def repo_files():
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not d.endswith(".egg-info")]
        for filename in filenames:
            path = Path(dirpath) / filename
            if path != Path(__file__).resolve() and path.stat().st_size < 2**20:
                yield path


def pointer_problems(text: str, name: str) -> list[str]:
    return [
        f"{name}:{number}: points outside the repository: {line.strip()!r}"
        for number, line in enumerate(text.splitlines(), 1)
        if POINTER_PATTERNS.search(line)
    ]


# ---- the guards ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("doc", DOCS, ids=[str(p.relative_to(ROOT)) for p in DOCS])
def test_no_shell_residue(doc: Path):
    assert residue_problems(doc.read_text(), doc.name) == []


@pytest.mark.parametrize("doc", DOCS, ids=[str(p.relative_to(ROOT)) for p in DOCS])
def test_rlvr_commands_parse(doc: Path):
    assert cli_problems(doc.read_text(), doc.name) == []


@pytest.mark.parametrize("doc", DOCS, ids=[str(p.relative_to(ROOT)) for p in DOCS])
def test_yaml_examples_validate(doc: Path):
    assert yaml_problems(doc.read_text(), doc.name) == []


@pytest.mark.parametrize("source", DOCS + LAUNCH, ids=[str(p.relative_to(ROOT)) for p in DOCS + LAUNCH])
def test_named_paths_exist(source: Path):
    assert path_problems(source.read_text(), source) == []


def test_no_pointers_outside_the_repository():
    problems = []
    for path in repo_files():
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        problems += pointer_problems(text, str(path.relative_to(ROOT)))
    assert problems == []


def test_readme_shows_the_custom_reward_section():
    readme = (ROOT / "README.md").read_text()
    assert re.search(r"^## Add your own reward$", readme, re.MULTILINE) and "rewards:\n  terms:" in readme


# ---- the checks catch what they are for ---------------------------------------------------------------------

BAD_README = """\
## Data
EOF
sed -n 1,200p docs/custom_reward.md | sed 's/x/y/' >> README.md
cat >> README.md <<'EOF'

```bash
rlvr train recipes/quickstart.yaml --resume runs/quickstart/checkpoints/step_000020
rlvr eval runs/quickstart --frobnicate
rlvr validate recipes/quickstart.yaml train.no_such_key=3   # an override of a key that does not exist
rlvr train recipes/gsm8k_grpo.yaml \\
  model.path=/models/x
```
See shared notes: cpu-stack and algorithms.md §1.1.
```yaml
model: {path: tiny, precision: bf16}
```
EOF
wc -l README.md
"""


def test_checks_catch_the_old_defects():
    residue = residue_problems(BAD_README, "bad")
    assert {p.split(": ")[1] for p in residue} >= {
        "bare heredoc terminator",
        "redirection into a doc",
        "heredoc",
        "sed print range",
        "wc on a doc",
    }
    cli = cli_problems(BAD_README, "bad")
    assert any("--frobnicate" in p for p in cli)
    assert any("no_such_key" in p for p in cli)
    paths = path_problems(BAD_README, ROOT / "README.md")
    assert any("step_000020" in p for p in paths) and any("gsm8k_grpo.yaml" in p for p in paths)
    assert len(pointer_problems(BAD_README, "bad")) == 1
    assert any("precision" in p for p in yaml_problems(BAD_README, "bad"))


def test_quickstart_checkpoints_are_valid_paths():
    run_dir, steps = quickstart_outputs()
    assert steps and all(path_ok(f"{run_dir}/checkpoints/step_{s:06d}") for s in steps)
    assert not path_ok(f"{run_dir}/checkpoints/step_{max(steps) + 1:06d}")
