"""Dataset loaders: MovieLens 100K (fetched into the cache), MovieLens "latest" CSV folders and KuaiRand-Pure
(a shared local copy)."""

from __future__ import annotations

from pathlib import Path

from streamrec.models.dataset import Dataset
from streamrec.streams.tools.data.errors import DatasetError
from streamrec.streams.tools.data.kuairand import NAME as KUAIRAND
from streamrec.streams.tools.data.kuairand import load_kuairand
from streamrec.streams.tools.data.latest import load_movielens_latest
from streamrec.streams.tools.data.movielens import fetch_movielens_100k, load_movielens_100k

__all__ = [
    "KUAIRAND",
    "LOCAL_DATASETS",
    "NAMED_DATASETS",
    "DatasetError",
    "fetch_movielens_100k",
    "load_dataset",
    "load_kuairand",
    "load_movielens_100k",
    "load_movielens_latest",
]

NAMED_DATASETS = ("ml-100k",)  # datasets `streamrec dataset fetch` can download by name
LOCAL_DATASETS = (KUAIRAND,)  # datasets read by name from a local copy (`path`: another folder)


def load_dataset(*, name: str | None = None, path: Path | None = None, cache_dir: Path) -> Dataset:
    """A named dataset (ml-100k from the cache; kuairand-pure from its shared folder, or from `path`), or a
    MovieLens 'latest' CSV folder at `path` (which wins over ml-100k)."""
    if name == KUAIRAND:
        return load_kuairand(path).as_dataset()
    if path is not None:
        return load_movielens_latest(path)
    if name in (None, "ml-100k"):
        return load_movielens_100k(cache_dir)
    known = ", ".join(NAMED_DATASETS + LOCAL_DATASETS)
    raise DatasetError(f"unknown dataset {name!r}: choose one of {known} or pass a folder")
