"""Fixtures shared by every tier."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tgis_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where this test session builds and caches the built-in tiny model (once)."""
    override = os.environ.get("TGIS_TEST_CACHE_DIR")
    if override:
        return Path(override)
    return tmp_path_factory.mktemp("tgis-cache")


@pytest.fixture(autouse=True)
def _clean_environ() -> Iterator[None]:
    """Tests must not leak environment changes into each other."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)
