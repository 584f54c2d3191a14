"""Test helpers for the interaction baselines: a feeder of plays with consecutive ids and times, and the checks
every list of theirs must pass. Imported by tests/models/test_{ease,item_knn}.py (pytest runs with
--import-mode=importlib, so they put this directory on sys.path first).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, TypeVar

from streamrec.models.base import Recommendation, Recommender
from streamrec.models.evaluate import GroundTruth, verify_reasons
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


def assert_a_sound_list(
    recs: list[Recommendation], viewer: str, n: int, n_items: int, truth: GroundTruth, now_ts: int
) -> None:
    """n distinct items (fewer when the viewer has watched the rest), none watched, every reason true, best first."""
    ids = [r.item_id for r in recs]
    assert len(ids) == len(set(ids)) == min(n, n_items - len(truth.history(viewer)))
    assert not set(ids) & truth.history(viewer)
    assert all(verify_reasons(recs, viewer, truth, now_ts, truth.seq))
    assert [r.score for r in recs] == sorted((r.score for r in recs), reverse=True)
