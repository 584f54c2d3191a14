"""What the item-kNN, trending and EASE baselines share: the catalog index, each viewer's interactions in order,
event de-duplication, the stream clock, true "watched" reasons, and lists topped up by incremental popularity.

An *interaction* is the first rating or play of a (viewer, item) pair, as in `models.baselines`; later events
about the pair change nothing here. Searches only move the clock.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from streamrec.models.base import Reason, Recommendation, Recommender
from streamrec.models.baselines import IncrementalPopularity
from streamrec.models.events import CatalogItem, Search, UserEvent

__all__ = ["InteractionBaseline", "Scored", "ViewerItems"]

Scored = tuple[int, float, Reason]  # (catalog index, score, the reason for it)


class ViewerItems:
    """One viewer's interactions: item indices in first-interaction order, and the same as a set."""

    __slots__ = ("order", "seen")

    def __init__(self) -> None:
        self.order: list[int] = []
        self.seen: set[int] = set()

    def as_array(self) -> npt.NDArray[np.int64]:
        return np.array(self.order, dtype=np.int64)


class InteractionBaseline(Recommender):
    """Subclasses implement `rank` and may hook `_on_new_item` and `_on_interaction`."""

    def __init__(self) -> None:
        self._index: dict[str, int] = {}
        self.item_ids: list[str] = []
        self._titles: list[str] = []
        self.counts: list[int] = []  # interactions (distinct viewers) per item
        self._viewers: dict[str, ViewerItems] = {}
        self._seen_events: set[str] = set()
        # the fallback and top-up list, with its true "popular: N views so far" reasons
        self._popularity = IncrementalPopularity()
        self._watched_reasons: dict[int, Reason] = {}
        self.clock: int | None = None  # the latest event time learnt: what "now" means for time-based reasons

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def add_item(self, item: CatalogItem) -> None:
        self._popularity.add_item(item)
        idx = self._index.get(item.item_id)
        if idx is None:
            self._register(item.item_id, item.title)
        else:
            self._titles[idx] = item.title
            self._watched_reasons.pop(idx, None)  # its text names the old title

    def _register(self, item_id: str, title: str) -> int:
        idx = len(self.item_ids)
        self._index[item_id] = idx
        self.item_ids.append(item_id)
        self._titles.append(title)
        self.counts.append(0)
        self._on_new_item(idx)
        return idx

    def learn_one(self, event: UserEvent) -> bool:
        if event.event_id in self._seen_events:
            return False
        self._seen_events.add(event.event_id)
        self.clock = event.ts if self.clock is None else max(self.clock, event.ts)
        if isinstance(event, Search):
            return True  # these baselines do not use searches
        self._popularity.learn_one(event)
        idx = self._index.get(event.item_id)
        if idx is None:  # unknown item (validation normally rejects these): make it rankable, as popularity does
            idx = self._register(event.item_id, event.item_id)
        viewer = self._viewers.get(event.user_id)
        if viewer is None:
            viewer = self._viewers[event.user_id] = ViewerItems()
        if idx in viewer.seen:
            return True
        viewer.seen.add(idx)
        viewer.order.append(idx)
        self.counts[idx] += 1
        self._on_interaction(viewer, idx, event.ts)
        return True

    def _on_new_item(self, idx: int) -> None:
        """Hook: a catalog index was just assigned."""

    def _on_interaction(self, viewer: ViewerItems, idx: int, ts: int) -> None:
        """Hook: the viewer's first interaction with the item was just recorded (it is last in `viewer.order`)."""

    def watched_reason(self, idx: int) -> Reason:
        """ "Because you watched X", X an item the viewer interacted with (the caller's evidence)."""
        reason = self._watched_reasons.get(idx)
        if reason is None:
            title, item_id = self._titles[idx], self.item_ids[idx]
            reason = Reason("watched", f"Because you watched {title}", {"item_id": item_id, "title": title})
            self._watched_reasons[idx] = reason
        return reason

    def top_up(self, user_id: str, scored: Sequence[Scored], n: int) -> list[Recommendation]:
        """The scored items first (best first, none already interacted with), then the most popular items the
        viewer has not interacted with, score 0, with their popularity reasons, up to n."""
        ids = self.item_ids
        recs = [
            Recommendation(ids[idx], rank, score, (reason,))
            for rank, (idx, score, reason) in enumerate(scored[:n], start=1)
        ]
        if len(recs) < n:
            taken = {rec.item_id for rec in recs}
            # n popular items suffice: at most len(recs) of them are taken already
            for popular in self._popularity.rank(user_id, n):
                if popular.item_id in taken:
                    continue
                recs.append(Recommendation(popular.item_id, len(recs) + 1, 0.0, popular.reasons))
                if len(recs) == n:
                    break
        return recs
