"""The real-time item-item signal: who watched X also watched Y, updated on every event, plus item counts.

This is what a batch model lacks between retrains: a new release's neighbours appear with its first viewers.
"""

from __future__ import annotations

import heapq

import numpy as np
import numpy.typing as npt
from numba import njit


class Cooccurrence:
    """Dense symmetric co-occurrence counts with cosine normalisation at read time.

    Change the counts only through these methods: `version` tells readers' caches when to refresh.
    """

    def __init__(self, capacity: int = 256) -> None:
        self.counts = np.zeros((capacity, capacity), dtype=np.float32)
        self.item_counts = np.zeros(capacity, dtype=np.float64)
        self.n_items = 0
        self.version = 0

    def ensure(self, n_items: int) -> None:
        if n_items > self.counts.shape[0]:
            size = max(n_items, 2 * self.counts.shape[0])
            counts = np.zeros((size, size), dtype=np.float32)
            counts[: self.n_items, : self.n_items] = self.counts[: self.n_items, : self.n_items]
            self.counts = counts
            item_counts = np.zeros(size, dtype=np.float64)
            item_counts[: self.n_items] = self.item_counts[: self.n_items]
            self.item_counts = item_counts
        if n_items > self.n_items:
            self.n_items = n_items
            self.version += 1

    def add(self, item: int, with_items: npt.NDArray[np.intp]) -> None:
        """One new consumption of `item` by a user who recently consumed `with_items` (distinct from item)."""
        self.ensure(item + 1)
        self.version += 1
        self.item_counts[item] += 1.0
        if with_items.size:
            self.counts[item, with_items] += 1.0
            self.counts[with_items, item] += 1.0

    def add_pairs(self, item: int, recent_rows: list[int]) -> None:
        """`add(item, rows)` for the rows of `recent_rows` that are neither -1 (not in the catalog) nor `item`,
        in one compiled pass (no index arrays, no fancy-indexing temporaries)."""
        self.ensure(item + 1)
        self.version += 1
        self.item_counts[item] += 1.0
        if recent_rows:
            _add_pairs(self.counts, item, np.array(recent_rows, dtype=np.int64))

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
        self.version += 1
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

    def similarity_sums(
        self, items: npt.NDArray[np.intp], weights: npt.NDArray[np.float32], offsets: npt.NDArray[np.intp]
    ) -> npt.NDArray[np.float32]:
        """`similar_to(items[a:b], weights[a:b]).sum(axis=0)` for each slice a:b of `offsets`, bit for bit,
        without building the (history x items) matrices: (slices x n_items)."""
        out = np.zeros((offsets.shape[0] - 1, self.n_items), dtype=np.float32)
        _add_similarity(
            self.counts,
            self.item_counts,
            items.astype(np.int64),
            weights,
            offsets.astype(np.int64),
            np.arange(out.shape[0], dtype=np.int64),
            np.float32(1.0),
            False,
            out,
        )
        return out

    def add_similarity(
        self,
        items: npt.NDArray[np.intp],
        weights: npt.NDArray[np.float32],
        offsets: npt.NDArray[np.intp],
        targets: npt.NDArray[np.intp],
        weight: float,
        scores: npt.NDArray[np.float32],
    ) -> None:
        """For each slice k of `offsets`: `scores[targets[k]] += weight * unit(similarity_sums)`, where unit
        divides by the maximum (all zeros unless it is positive), bit for bit as numpy computes it."""
        _add_similarity(
            self.counts,
            self.item_counts,
            items.astype(np.int64),
            weights,
            offsets.astype(np.int64),
            targets.astype(np.int64),
            np.float32(weight),
            True,
            scores,
        )


@njit(cache=True)
def _add_pairs(counts: npt.NDArray[np.float32], item: int, rows: npt.NDArray[np.int64]) -> None:  # pragma: no cover
    for other in rows:
        if other >= 0 and other != item:
            counts[item, other] += np.float32(1.0)
            counts[other, item] += np.float32(1.0)


@njit(cache=True)
def _add_similarity(
    counts: npt.NDArray[np.float32],
    item_counts: npt.NDArray[np.float64],
    items: npt.NDArray[np.int64],
    weights: npt.NDArray[np.float32],
    offsets: npt.NDArray[np.int64],
    targets: npt.NDArray[np.int64],
    weight: np.float32,
    unit: bool,
    out: npt.NDArray[np.float32],
) -> None:  # pragma: no cover - compiled
    # Every step is rounded to float32 as numpy does, and history rows are added in order (numpy's axis-0 sum).
    n = out.shape[1]
    one = np.float32(1.0)
    acc = np.zeros(n, dtype=np.float32)
    for u in range(targets.shape[0]):
        acc[:] = 0.0
        for k in range(offsets[u], offsets[u + 1]):
            r = items[k]
            w = weights[k]
            own = item_counts[r]
            if k == offsets[u]:
                for j in range(n):
                    norm = max(np.float32(np.sqrt(own * item_counts[j])), one)
                    acc[j] = np.float32(w * np.float32(counts[r, j] / norm))
            else:
                for j in range(n):
                    norm = max(np.float32(np.sqrt(own * item_counts[j])), one)
                    acc[j] = np.float32(acc[j] + np.float32(w * np.float32(counts[r, j] / norm)))
        row = out[targets[u]]
        if not unit:
            row[:] = acc
            continue
        top = np.float32(0.0)
        positive = n > 0
        if positive:
            top = acc[0]
            for j in range(n):
                if np.isnan(acc[j]):
                    positive = False
                elif acc[j] > top:
                    top = acc[j]
            positive = positive and top > 0
        for j in range(n):
            scaled = np.float32(acc[j] / top) if positive else np.float32(0.0)
            row[j] = np.float32(row[j] + np.float32(weight * scaled))


class TrendingCounter:
    """Exact interaction counts per item within a sliding event-time window (so reasons can quote them).

    Views may arrive out of time order (the item-signal log interleaves workers' batches): they leave the window
    by their own time, and one already outside it is not counted."""

    def __init__(self, window_ms: int, capacity: int = 256) -> None:
        self.window_ms = window_ms
        self.counts = np.zeros(capacity, dtype=np.int64)
        self._events: list[tuple[int, int]] = []  # a heap of (ts, item): the oldest view leaves first
        self.now = 0
        self.version = 0  # bumped whenever a count changes (caches key on it)

    def ensure(self, n_items: int) -> None:
        if n_items > self.counts.shape[0]:
            grown = np.zeros(max(n_items, 2 * self.counts.shape[0]), dtype=np.int64)
            grown[: self.counts.shape[0]] = self.counts
            self.counts = grown
            self.version += 1

    def add(self, item: int, ts: int) -> None:
        self.ensure(item + 1)
        if ts <= self.now - self.window_ms:
            return  # outside the window already
        self.version += 1
        self.counts[item] += 1
        heapq.heappush(self._events, (ts, item))
        self.advance(ts)

    def advance(self, now: int) -> None:
        self.now = max(self.now, now)
        horizon = self.now - self.window_ms
        events = self._events
        if events and events[0][0] <= horizon:
            self.version += 1
            while events and events[0][0] <= horizon:
                _, item = heapq.heappop(events)
                self.counts[item] -= 1
