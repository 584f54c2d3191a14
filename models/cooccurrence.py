"""The real-time item-item signal: who watched X also watched Y, updated on every event, plus item counts.

This is what a batch model lacks between retrains: a new release's neighbours appear with its first viewers.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import numpy.typing as npt


class Cooccurrence:
    """Dense symmetric co-occurrence counts with cosine normalisation at read time."""

    def __init__(self, capacity: int = 256) -> None:
        self.counts = np.zeros((capacity, capacity), dtype=np.float32)
        self.item_counts = np.zeros(capacity, dtype=np.float64)
        self.n_items = 0

    def ensure(self, n_items: int) -> None:
        if n_items > self.counts.shape[0]:
            size = max(n_items, 2 * self.counts.shape[0])
            counts = np.zeros((size, size), dtype=np.float32)
            counts[: self.n_items, : self.n_items] = self.counts[: self.n_items, : self.n_items]
            self.counts = counts
            item_counts = np.zeros(size, dtype=np.float64)
            item_counts[: self.n_items] = self.item_counts[: self.n_items]
            self.item_counts = item_counts
        self.n_items = max(self.n_items, n_items)

    def add(self, item: int, with_items: npt.NDArray[np.intp]) -> None:
        """One new consumption of `item` by a user who recently consumed `with_items` (distinct from item)."""
        self.ensure(item + 1)
        self.item_counts[item] += 1.0
        if with_items.size:
            self.counts[item, with_items] += 1.0
            self.counts[with_items, item] += 1.0

    def seed(
        self,
        rows: npt.NDArray[np.intp],
        neighbour_rows: npt.NDArray[np.intp],
        counts: npt.NDArray[np.float32],
        item_counts: npt.NDArray[np.float32],
    ) -> None:
        """Warm start from a batch snapshot: keep the larger of live and snapshot counts (never double-count)."""
        if rows.size == 0:
            return
        self.ensure(int(max(rows.max(), neighbour_rows.max(initial=0))) + 1)
        np.maximum.at(self.item_counts, rows, item_counts.astype(np.float64))
        valid = neighbour_rows >= 0
        a = np.broadcast_to(rows[:, None], neighbour_rows.shape)[valid]
        b = neighbour_rows[valid]
        np.maximum.at(self.counts, (a, b), counts[valid])
        np.maximum.at(self.counts, (b, a), counts[valid])

    def similar_to(self, items: npt.NDArray[np.intp], weights: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Per history item, cosine similarity to every item, weighted: (len(items) x n_items)."""
        n = self.n_items
        rows = self.counts[items, :n]
        norm = np.sqrt(self.item_counts[items, None] * self.item_counts[None, :n]).astype(np.float32)
        np.maximum(norm, 1.0, out=norm)
        return weights[:, None] * (rows / norm)


class TrendingCounter:
    """Exact interaction counts per item within a sliding event-time window (so reasons can quote them)."""

    def __init__(self, window_ms: int, capacity: int = 256) -> None:
        self.window_ms = window_ms
        self.counts = np.zeros(capacity, dtype=np.int64)
        self._events: deque[tuple[int, int]] = deque()
        self.now = 0

    def ensure(self, n_items: int) -> None:
        if n_items > self.counts.shape[0]:
            grown = np.zeros(max(n_items, 2 * self.counts.shape[0]), dtype=np.int64)
            grown[: self.counts.shape[0]] = self.counts
            self.counts = grown

    def add(self, item: int, ts: int) -> None:
        self.ensure(item + 1)
        self.counts[item] += 1
        self._events.append((ts, item))
        self.advance(ts)

    def advance(self, now: int) -> None:
        self.now = max(self.now, now)
        horizon = self.now - self.window_ms
        while self._events and self._events[0][0] <= horizon:
            _, item = self._events.popleft()
            self.counts[item] -= 1
