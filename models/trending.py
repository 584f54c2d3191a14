"""Trending baseline: interactions decayed exponentially with event time (half-life one day by default).

An item's score at time t is the sum over its interactions at t_k of 2^(-(t - t_k) / half-life), kept per item
relative to one anchor time (`recency.RecencyCounter`): the decay is common to every item, so learning is O(1) and
ranking one partial sort, with no pass over the catalog to decay it. The reason says how many interactions the item
had in the last `window_ms` (one half-life by default), the count the evaluator checks; an item with none there gets
its popularity reason.
"""

from __future__ import annotations

from bisect import bisect_right, insort

import numpy as np
import numpy.typing as npt

from streamrec.models.base import Reason, Recommendation
from streamrec.models.baselines import popularity_reason, top_n_indices
from streamrec.models.events import DAY_MS
from streamrec.models.interaction_baseline import InteractionBaseline, ViewerItems
from streamrec.models.recency import RecencyCounter

__all__ = ["Trending", "trending_reason"]


def trending_reason(count: int, window_ms: int, as_of: int) -> Reason:
    """`count` interactions with the item in (as_of - window, as_of]."""
    days = window_ms / DAY_MS
    span = "day" if days == 1 else f"{days:g} days"
    noun = "view" if count == 1 else "views"
    evidence = {"count": str(count), "window_days": f"{days:g}", "as_of": str(as_of)}
    return Reason("trending", f"Trending: {count} {noun} in the last {span}", evidence)


class Trending(InteractionBaseline):
    """Most interacted-with items, recent interactions weighing more; ties broken by catalog order."""

    name = "trending"

    def __init__(self, half_life_ms: int = DAY_MS, window_ms: int | None = None) -> None:
        if half_life_ms <= 0:
            raise ValueError("half_life_ms must be > 0")
        super().__init__()
        self.half_life_ms = half_life_ms
        self.window_ms = half_life_ms if window_ms is None else window_ms
        # Per item: its interactions decayed to one anchor time. Decay is common to every item, so the order
        # never needs the clock; only the scores shown are brought to it.
        self._decayed = RecencyCounter(half_life_ms)
        self._stamps: list[list[int]] = []  # per item: its interactions' times, ascending

    def _on_new_item(self, idx: int) -> None:
        self._decayed.ensure(idx + 1)
        self._stamps.append([])

    def _on_interaction(self, viewer: ViewerItems, idx: int, ts: int) -> None:
        self._decayed.add(idx, ts)
        insort(self._stamps[idx], ts)  # appends in time-ordered streams

    def _to_clock(self) -> float:
        """The factor that brings the anchored values to the stream's clock."""
        anchor = self._decayed.anchor
        if self.clock is None or anchor is None:
            return 0.0
        return float(2.0 ** ((anchor - self.clock) / self.half_life_ms))

    def scores(self) -> npt.NDArray[np.float64]:
        """Every item's decayed interactions at the stream's clock (0 for items never interacted with)."""
        scaled: npt.NDArray[np.float64] = self._decayed.values[: self.n_items] * self._to_clock()
        return scaled

    def in_window(self, idx: int) -> int:
        """Interactions with the item in (clock - window, clock]."""
        if self.clock is None:
            return 0
        stamps = self._stamps[idx]
        return len(stamps) - bisect_right(stamps, self.clock - self.window_ms)

    def rank(self, user_id: str, n: int) -> list[Recommendation]:
        viewer = self._viewers.get(user_id)
        seen = viewer.as_array() if viewer is not None else np.empty(0, dtype=np.int64)
        anchored = self._decayed.values[: self.n_items]
        top = top_n_indices(anchored, seen, n)
        scores = anchored[top] * self._to_clock()
        ids, counts, recs = self.item_ids, self.counts, []
        for rank, (idx, score) in enumerate(zip(top.tolist(), scores.tolist(), strict=True), start=1):
            recent = self.in_window(idx)
            if recent and self.clock is not None:
                reason = trending_reason(recent, self.window_ms, self.clock)
            else:
                reason = popularity_reason(counts[idx])
            recs.append(Recommendation(ids[idx], rank, score, (reason,)))
        return recs
