"""Fixtures shared by the engine's tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from transform_helpers import write_sources


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The synthetic originals, written once per test module."""
    return write_sources(tmp_path_factory.mktemp("originals"))
