"""Models the project can provide without a model hub, by name: ``model.path: tiny`` or ``smollm2-135m``.

Each entry builds (once, into ``$RLVR_CACHE``) an ordinary HF model folder and returns its path; after that
the folder is used exactly like a user's own model folder. ``resolve_builtin(name)`` builds on first use,
``builtin_path(name)`` only looks (for ``rlvr validate``, which never builds).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rlvr.models.errors import ModelBuildError

__all__ = ["BUILTIN_MODELS", "ModelBuildError", "builtin_path", "is_builtin", "resolve_builtin"]


def _tiny_build() -> Path:
    from rlvr.tiny.build import build_tiny

    return build_tiny()


def _tiny_ready() -> Path | None:
    from rlvr.models.cache import cache_root
    from rlvr.tiny.build import is_complete, version_hash

    target = cache_root() / f"tiny-{version_hash()}"
    return target if is_complete(target) else None


def _smollm2_build() -> Path:
    from rlvr.models.smollm2 import build_smollm2

    return build_smollm2()


def _smollm2_ready() -> Path | None:
    from rlvr.models.smollm2 import default_target, is_complete

    target = default_target()
    return target if is_complete(target) else None


# name -> (build on first use, look without building)
BUILTIN_MODELS: dict[str, tuple[Callable[[], Path], Callable[[], Path | None]]] = {
    "tiny": (_tiny_build, _tiny_ready),
    "smollm2-135m": (_smollm2_build, _smollm2_ready),
}


def is_builtin(name: str) -> bool:
    """True when ``name`` is one of ``BUILTIN_MODELS``."""
    return name in BUILTIN_MODELS


def resolve_builtin(name: str) -> str:
    """The folder of built-in model ``name``, built first if needed."""
    return str(BUILTIN_MODELS[name][0]())


def builtin_path(name: str) -> str | None:
    """The folder of built-in model ``name`` if it is already built, else None (never builds)."""
    found = BUILTIN_MODELS[name][1]()
    return str(found) if found else None
