"""Fixtures for the checkpoint tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

WRITER = Path(__file__).with_name("crash_writer.py")


@pytest.fixture(scope="session")
def writer_module():
    """The crash writer module, for its deterministic ``payload``."""
    spec = importlib.util.spec_from_file_location("crash_writer", WRITER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
