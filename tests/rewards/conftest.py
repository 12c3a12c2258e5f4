"""Shared fixtures for the reward tests: one real sandboxed pool per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rlvr.reward.sandbox import VerifierPool


@pytest.fixture(scope="module")
def pool() -> Iterator[VerifierPool]:
    """A 2-worker pool with the built-in math rewards preloaded."""
    with VerifierPool(workers=2, timeout_s=30.0, memory_mb=1024, preload=("math", "gsm8k")) as p:
        yield p
