"""Catalog coverage: the distinct items recommended over the catalog's size."""

from __future__ import annotations

from collections.abc import Iterable, Sized


class Coverage:
    def __init__(self, catalog: Sized) -> None:
        self.catalog = catalog  # read at `get`: a catalog that grows counts at its final size
        self.covered: set[str] = set()

    def update(self, items: Iterable[str]) -> None:
        self.covered.update(items)

    def get(self) -> float:
        size = len(self.catalog)
        return len(self.covered) / size if size else 0.0
