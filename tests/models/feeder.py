"""A test helper for the interaction baselines: feeds one system plays with consecutive ids and times.

Imported by tests/models/test_{ease,item_knn}.py (pytest runs with --import-mode=importlib, so they put this
directory on sys.path first).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, TypeVar

from streamrec.models.base import Recommender
from streamrec.models.events import CatalogItem, Play

System = TypeVar("System", bound=Recommender)


class Stream(Generic[System]):
    def __init__(self, system: System, items: Sequence[CatalogItem]) -> None:
        self.system = system
        self.n = 0
        for item in items:
            system.add_item(item)

    def watch(self, user: str, *items: str) -> None:
        for item in items:
            self.n += 1
            self.system.learn_one(Play(f"e{self.n}", user, item, 60.0, 1_000 * self.n))
