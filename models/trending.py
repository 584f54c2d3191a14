"""Trending baseline: interactions decayed exponentially with event time (half-life one day by default).

An item's score at time t is the sum over its interactions at t_k of 2^(-(t - t_k) / half-life), kept per item as
(value, reference time) and decayed to the stream's clock when a list is ranked, so learning is O(1) and ranking
one vectorised pass. The reason says how many interactions the item had in the last `window_ms` (one half-life
by default), the count the evaluator checks; an item with none there gets its popularity reason.
"""

from __future__ import annotations

from bisect import bisect_right, insort

import numpy as np
import numpy.typing as npt

from streamrec.models.base import Reason, Recommendation
from streamrec.models.baselines import popularity_reason, top_n_indices
from streamrec.models.events import DAY_MS
from streamrec.models.interaction_baseline import InteractionBaseline, ViewerItems

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
        # per item: its decayed value as of `_reference` (growable arrays, the first n_items rows in use)
        self._value = np.zeros(64, dtype=np.float64)
        self._reference = np.zeros(64, dtype=np.int64)
        self._stamps: list[list[int]] = []  # per item: its interactions' times, ascending

    def _on_new_item(self, idx: int) -> None:
        if idx == self._value.size:
            self._value = np.concatenate([self._value, np.zeros_like(self._value)])
            self._reference = np.concatenate([self._reference, np.zeros_like(self._reference)])
        self._stamps.append([])

    def _on_interaction(self, viewer: ViewerItems, idx: int, ts: int) -> None:
        value, reference = float(self._value[idx]), int(self._reference[idx])
        if value == 0.0:
            self._value[idx], self._reference[idx] = 1.0, ts
        else:  # decay both to the later of the two times (an event may arrive a little out of order)
            later = max(reference, ts)
            h = self.half_life_ms
            self._value[idx] = value * 2.0 ** ((reference - later) / h) + 2.0 ** ((ts - later) / h)
            self._reference[idx] = later
        insort(self._stamps[idx], ts)  # appends in time-ordered streams

    def scores(self) -> npt.NDArray[np.float64]:
        """Every item's decayed interactions at the stream's clock (0 for items never interacted with)."""
        m = self.n_items
        if self.clock is None:
            return np.zeros(m, dtype=np.float64)
        age = (self.clock - self._reference[:m]).astype(np.float64)
        decayed: npt.NDArray[np.float64] = self._value[:m] * np.exp2(-age / self.half_life_ms)
        return decayed

    def in_window(self, idx: int) -> int:
        """Interactions with the item in (clock - window, clock]."""
        if self.clock is None:
            return 0
        stamps = self._stamps[idx]
        return len(stamps) - bisect_right(stamps, self.clock - self.window_ms)

    def rank(self, user_id: str, n: int) -> list[Recommendation]:
        viewer = self._viewers.get(user_id)
        seen = viewer.as_array() if viewer is not None else np.empty(0, dtype=np.int64)
        scores = self.scores()
        top = top_n_indices(scores, seen, n)
        ids, counts, recs = self.item_ids, self.counts, []
        for rank, (idx, score) in enumerate(zip(top.tolist(), scores[top].tolist(), strict=True), start=1):
            recent = self.in_window(idx)
            if recent and self.clock is not None:
                reason = trending_reason(recent, self.window_ms, self.clock)
            else:
                reason = popularity_reason(counts[idx])
            recs.append(Recommendation(ids[idx], rank, score, (reason,)))
        return recs
