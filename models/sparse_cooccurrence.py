"""Co-occurrence for large catalogs: per item, only its most co-watched neighbours.

The dense matrix needs items² floats (40 GB at 100,000 items); this keeps at most `k` neighbours per item
(100,000 items × 128 neighbours: 100 MB). A full row makes room by the Misra-Gries rule: all its counts drop by
the smallest, and those at zero leave. So a count never over-states a pair and under-states it by at most
(the row's total) / k, and a pair watched together more often than that keeps its place.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

from streamrec.models.cooccurrence import Cooccurrence

Rows = npt.NDArray[np.intp]
F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
DEFAULT_NEIGHBOURS = 128


class SparseCooccurrence:
    """Bounded neighbour lists (Misra-Gries) with cosine normalisation at read time; `version` as in
    `Cooccurrence`."""

    def __init__(self, k: int = DEFAULT_NEIGHBOURS, capacity: int = 256) -> None:
        self.k = k
        self.neighbours = np.full((capacity, k), -1, dtype=np.int32)
        self.counts = np.zeros((capacity, k), dtype=np.float32)
        self.sizes = np.zeros(capacity, dtype=np.int64)
        self.item_counts = np.zeros(capacity, dtype=np.float64)
        self.n_items = 0
        self.version = 0

    @classmethod
    def from_dense(cls, dense: Cooccurrence, k: int = DEFAULT_NEIGHBOURS) -> SparseCooccurrence:
        """The `k` largest counts of each row of a dense matrix (what a catalog outgrowing it switches to)."""
        n = dense.n_items
        sparse = cls(k, max(n, 256))
        sparse.n_items = n
        sparse.item_counts[:n] = dense.item_counts[:n]
        sparse.version = dense.version + 1
        for row in range(n):
            values = dense.counts[row, :n]
            nonzero = np.flatnonzero(values)
            if nonzero.size > k:
                nonzero = nonzero[np.argpartition(-values[nonzero], k - 1)[:k]]
            nonzero = np.sort(nonzero)
            sparse.neighbours[row, : nonzero.size] = nonzero
            sparse.counts[row, : nonzero.size] = values[nonzero]
            sparse.sizes[row] = nonzero.size
        return sparse

    def ensure(self, n_items: int) -> None:
        capacity = self.sizes.shape[0]
        if n_items > capacity:
            size = max(n_items, 2 * capacity)
            neighbours = np.full((size, self.k), -1, dtype=np.int32)
            neighbours[:capacity] = self.neighbours
            counts = np.zeros((size, self.k), dtype=np.float32)
            counts[:capacity] = self.counts
            self.neighbours, self.counts = neighbours, counts
            self.sizes = np.concatenate([self.sizes, np.zeros(size - capacity, dtype=np.int64)])
            self.item_counts = np.concatenate([self.item_counts, np.zeros(size - capacity)])
        if n_items > self.n_items:
            self.n_items = n_items
            self.version += 1

    def add_pairs(self, item: int, recent_rows: list[int]) -> None:
        """One new consumption of `item` by a user who recently consumed `recent_rows` (-1 and `item` skipped)."""
        self.ensure(item + 1)
        self.version += 1
        self.item_counts[item] += 1.0
        if recent_rows:
            _add_pairs(self.neighbours, self.counts, self.sizes, item, np.array(recent_rows, dtype=np.int64))

    def seed(self, rows: Rows, neighbour_rows: Rows, counts: F32, item_counts: F32) -> None:
        """Warm start from a batch snapshot: keep the larger of live and snapshot counts (never double-count)."""
        if rows.size == 0:
            return
        self.ensure(int(max(rows.max(), neighbour_rows.max(initial=0))) + 1)
        self.version += 1
        np.maximum.at(self.item_counts, rows, item_counts.astype(np.float64))
        _seed(
            self.neighbours,
            self.counts,
            self.sizes,
            rows.astype(np.int64),
            neighbour_rows.astype(np.int64),
            counts.astype(np.float32),
        )

    def pair_count(self, item: int, other: int) -> float:
        """The count `item`'s list holds for `other` (0 if it holds none)."""
        return float(_lookup(self.neighbours, self.counts, self.sizes, item, other))

    def accumulate(self, rows: Rows, weights: F32, acc: F32) -> Rows:
        """acc[j] += w * cosine(r, j) over each history row r (weight w) and each neighbour j it lists, in order;
        returns the rows touched. `acc` must be zero wherever the caller has not reset it."""
        touched = np.empty(rows.shape[0] * self.k, dtype=np.int64)
        count = _accumulate(
            self.neighbours, self.counts, self.sizes, self.item_counts, rows.astype(np.int64), weights, acc, touched
        )
        return touched[:count]

    def strongest(
        self, rows: Rows, weights: F32, row_offsets: I64, chosen: Rows, chosen_offsets: I64
    ) -> tuple[Rows, F32, F32]:
        """Per slice and chosen item: the history row contributing most to its co-occurrence score, that
        contribution, and its share of the item's score (as `ranking._strongest` for the dense matrix)."""
        best = np.empty(chosen.shape[0], dtype=np.intp)
        top = np.empty(chosen.shape[0], dtype=np.float32)
        ratio = np.empty(chosen.shape[0], dtype=np.float32)
        _strongest(
            self.neighbours, self.counts, self.sizes, self.item_counts,
            rows.astype(np.int64), weights, row_offsets, chosen.astype(np.int64), chosen_offsets, best, top, ratio,
        )  # fmt: skip
        return best, top, ratio


@njit(cache=True)
def _bump(neighbours: I32, counts: F32, sizes: I64, a: int, b: int, by: np.float32) -> None:  # pragma: no cover
    size = sizes[a]
    row = neighbours[a]
    for pos in range(size):
        if row[pos] == b:
            counts[a, pos] += by
            return
    if size == row.shape[0]:
        size = _make_room(neighbours, counts, a, size)
    row[size] = b
    counts[a, size] = by
    sizes[a] = size + 1


@njit(cache=True)
def _make_room(neighbours: I32, counts: F32, a: int, size: int) -> int:  # pragma: no cover - compiled
    """Misra-Gries: every count of the full row drops by the row's smallest, and those reaching zero leave
    (one pass frees every least-counted slot at once, so a churning row pays it rarely)."""
    low = counts[a, 0]
    for pos in range(1, size):
        low = min(low, counts[a, pos])
    kept = 0
    for pos in range(size):
        value = counts[a, pos] - low
        if value > 0:
            neighbours[a, kept] = neighbours[a, pos]
            counts[a, kept] = value
            kept += 1
    for pos in range(kept, size):
        neighbours[a, pos] = -1
        counts[a, pos] = 0.0
    return kept


@njit(cache=True)
def _add_pairs(neighbours: I32, counts: F32, sizes: I64, item: int, rows: I64) -> None:  # pragma: no cover
    one = np.float32(1.0)
    for other in rows:
        if other >= 0 and other != item:
            _bump(neighbours, counts, sizes, item, other, one)
            _bump(neighbours, counts, sizes, other, item, one)


@njit(cache=True)
def _lookup(neighbours: I32, counts: F32, sizes: I64, a: int, b: int) -> np.float32:  # pragma: no cover
    for pos in range(sizes[a]):
        if neighbours[a, pos] == b:
            return np.float32(counts[a, pos])
    return np.float32(0.0)


@njit(cache=True)
def _set_at_least(
    neighbours: I32, counts: F32, sizes: I64, a: int, b: int, value: np.float32
) -> None:  # pragma: no cover
    current = _lookup(neighbours, counts, sizes, a, b)
    if value > current:
        _bump(neighbours, counts, sizes, a, b, np.float32(value - current))


@njit(cache=True)
def _seed(
    neighbours: I32,
    counts: F32,
    sizes: I64,
    rows: I64,
    neighbour_rows: I64,
    values: F32,
) -> None:  # pragma: no cover - compiled
    for i in range(rows.shape[0]):
        for j in range(neighbour_rows.shape[1]):
            b = neighbour_rows[i, j]
            if b >= 0:
                _set_at_least(neighbours, counts, sizes, rows[i], b, values[i, j])
                _set_at_least(neighbours, counts, sizes, b, rows[i], values[i, j])


@njit(cache=True)
def _accumulate(
    neighbours: I32,
    counts: F32,
    sizes: I64,
    item_counts: npt.NDArray[np.float64],
    rows: I64,
    weights: F32,
    acc: F32,
    touched: I64,
) -> int:  # pragma: no cover - compiled
    # float32 steps in history order, as the dense `Cooccurrence.add_similarity` takes them.
    one = np.float32(1.0)
    n_touched = 0
    for k in range(rows.shape[0]):
        r = rows[k]
        w = weights[k]
        own = item_counts[r]
        for pos in range(sizes[r]):
            j = neighbours[r, pos]
            norm = max(np.float32(np.sqrt(own * item_counts[j])), one)
            if acc[j] == 0.0:
                touched[n_touched] = j
                n_touched += 1
            acc[j] = np.float32(acc[j] + np.float32(w * np.float32(counts[r, pos] / norm)))
    return n_touched


@njit(cache=True)
def _strongest(
    neighbours: I32,
    counts: F32,
    sizes: I64,
    item_counts: npt.NDArray[np.float64],
    rows: I64,
    weights: F32,
    row_offsets: I64,
    chosen: I64,
    chosen_offsets: I64,
    best: Rows,
    top: F32,
    ratio: F32,
) -> None:  # pragma: no cover - compiled
    one = np.float32(1.0)
    floor = np.float32(1e-9)
    for k in range(row_offsets.shape[0] - 1):
        for pos in range(chosen_offsets[k], chosen_offsets[k + 1]):
            j = chosen[pos]
            arg = row_offsets[k]
            high = np.float32(-1.0)
            total = np.float32(0.0)
            for i in range(row_offsets[k], row_offsets[k + 1]):
                r = rows[i]
                norm = max(np.float32(np.sqrt(item_counts[r] * item_counts[j])), one)
                value = np.float32(weights[i] * np.float32(_lookup(neighbours, counts, sizes, r, j) / norm))
                if value > high:
                    arg = i
                    high = value
                total = np.float32(total + value)
            best[pos] = rows[arg]
            top[pos] = high
            ratio[pos] = np.float32(high / (floor if total < floor else total))
