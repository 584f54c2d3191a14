"""Dataset loaders: MovieLens 100K (fetched into the cache) and MovieLens "latest" CSV folders."""

from __future__ import annotations

from pathlib import Path

from streamrec.models.dataset import Dataset
from streamrec.streams.tools.data.errors import DatasetError
from streamrec.streams.tools.data.latest import load_movielens_latest
from streamrec.streams.tools.data.movielens import fetch_movielens_100k, load_movielens_100k

__all__ = [
    "NAMED_DATASETS",
    "DatasetError",
    "fetch_movielens_100k",
    "load_dataset",
    "load_movielens_100k",
    "load_movielens_latest",
]

NAMED_DATASETS = ("ml-100k",)  # datasets `streamrec dataset fetch` can download by name


def load_dataset(*, name: str | None = None, path: Path | None = None, cache_dir: Path) -> Dataset:
    """A named dataset from the cache, or a MovieLens 'latest' CSV folder at `path` (which wins if given)."""
    if path is not None:
        return load_movielens_latest(path)
    if name in (None, "ml-100k"):
        return load_movielens_100k(cache_dir)
    raise DatasetError(f"unknown dataset {name!r}: choose one of {', '.join(NAMED_DATASETS)} or pass a folder")
