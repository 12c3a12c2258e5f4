"""Session fixture: the trained tiny model, built at most once per cache (``build_tiny`` is cached)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_model():
    from rlvr.tiny.build import build_tiny

    return build_tiny()
