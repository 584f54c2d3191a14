"""The real MovieLens 100K, fetched once per session (via the RecBole wheel from PyPI when GroupLens is out of
reach) into a session temp dir, or into $STREAMREC_TEST_CACHE_DIR to reuse a copy across sessions."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from streamrec.models.dataset import Dataset
from streamrec.streams.tools.data import load_movielens_100k


@pytest.fixture(scope="session")
def ml100k_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    configured = os.environ.get("STREAMREC_TEST_CACHE_DIR")
    return Path(configured) if configured else tmp_path_factory.mktemp("ml100k-cache")


@pytest.fixture(scope="session")
def ml100k(ml100k_cache: Path) -> Dataset:
    return load_movielens_100k(ml100k_cache, show_progress=False)
