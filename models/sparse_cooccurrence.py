"""Co-occurrence for large catalogs: per item, the counts of the items actually co-watched with it.

The dense matrix needs items² floats (40 GB at 100,000 items), almost all zeros. This keeps each item's
non-zero counts in a small hash table of its own (open addressing, linear probing), all tables in one pool
that grows as rows fill: the counts are exact, as the dense matrix's, for as many pairs as `max_slots` holds.
Truncating each row to its most counted neighbours (Misra-Gries with 128 places) halved HR@10 on MovieLens
100K: a popular item meets thousands of items, so every count of its row lost most of its value
(docs/large-catalog.md). Only a row that must grow once the pool holds `max_slots` slots makes room the
Misra-Gries way: all its counts drop by the smallest, and those at zero leave (a count then never over-states
a pair, and a pair watched together more often than the row's share keeps its place).
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
DEFAULT_SLOTS = 1 << 24  # 128 MB of keys and counts; 40,000 MovieLens 100K events take 1.0 M slots
FIRST_BLOCK = 8  # a row's first table; tables double past 3/4 full
_USED, _LIVE, _EVICTIONS = 0, 1, 2  # `state`: pool slots handed out, slots in live tables, rows that made room


class SparseCooccurrence:
    """Exact co-occurrence counts in per-item hash tables, cosine normalisation at read time; `version` as in
    `Cooccurrence`."""

    def __init__(self, max_slots: int = DEFAULT_SLOTS, capacity: int = 256) -> None:
        self.max_slots = max_slots
        self.keys = np.full(FIRST_BLOCK * capacity, -1, dtype=np.int32)  # the pool: neighbour rows, -1 free
        self.counts = np.zeros(self.keys.shape[0], dtype=np.float32)  # and their counts
        self.starts = np.zeros(capacity, dtype=np.int64)  # each row's table: pool[starts : starts + caps]
        self.caps = np.zeros(capacity, dtype=np.int64)
        self.sizes = np.zeros(capacity, dtype=np.int64)
        self.state = np.zeros(3, dtype=np.int64)
        self.item_counts = np.zeros(capacity, dtype=np.float64)
        self.n_items = 0
        self.version = 0

    @classmethod
    def from_dense(cls, dense: Cooccurrence, max_slots: int = DEFAULT_SLOTS) -> SparseCooccurrence:
        """The non-zero counts of a dense matrix (what a catalog outgrowing it switches to); each row's largest
        first, so that a budget too small for them all keeps those."""
        n = dense.n_items
        sparse = cls(max_slots, max(n, 256))
        sparse.n_items = n
        sparse.item_counts[:n] = dense.item_counts[:n]
        sparse.version = dense.version + 1
        for row in range(n):
            values = dense.counts[row, :n]
            nonzero = np.flatnonzero(values)
            if nonzero.size:
                nonzero = nonzero[np.argsort(-values[nonzero], kind="stable")]
                sparse._load(np.full(nonzero.size, row, dtype=np.int64), nonzero.astype(np.int64), values[nonzero])
        return sparse

    # -- size -------------------------------------------------------------------------------------------------
    @property
    def slots(self) -> int:
        """Slots held by the rows' tables (the memory in use: 8 bytes each)."""
        return int(self.state[_LIVE])

    @property
    def pairs(self) -> int:
        """Counts held (each direction of a pair is one)."""
        return int(self.sizes[: self.n_items].sum())

    @property
    def exact(self) -> bool:
        """True while no row had to make room: every count is the dense matrix's."""
        return int(self.state[_EVICTIONS]) == 0

    def row(self, item: int) -> tuple[I64, F32]:
        """`item`'s neighbours (ascending) and their counts."""
        start, cap = int(self.starts[item]), int(self.caps[item])
        keys = self.keys[start : start + cap].astype(np.int64)
        held = np.flatnonzero(keys >= 0)
        order = np.argsort(keys[held])
        return keys[held][order], self.counts[start : start + cap][held][order]

    def ensure(self, n_items: int) -> None:
        capacity = self.sizes.shape[0]
        if n_items > capacity:
            grow = max(n_items, 2 * capacity) - capacity
            self.starts = np.concatenate([self.starts, np.zeros(grow, dtype=np.int64)])
            self.caps = np.concatenate([self.caps, np.zeros(grow, dtype=np.int64)])
            self.sizes = np.concatenate([self.sizes, np.zeros(grow, dtype=np.int64)])
            self.item_counts = np.concatenate([self.item_counts, np.zeros(grow)])
        if n_items > self.n_items:
            self.n_items = n_items
            self.version += 1

    # -- counting -------------------------------------------------------------------------------------------
    def add_pairs(self, item: int, recent_rows: list[int]) -> None:
        """One new consumption of `item` by a user who recently consumed `recent_rows` (-1 and `item` skipped)."""
        others = np.array(recent_rows, dtype=np.int64)
        self.ensure(max(item, int(others.max(initial=-1))) + 1)
        self.version += 1
        self.item_counts[item] += 1.0
        if recent_rows:
            done = 0
            while done < others.shape[0]:
                done = _add_pairs(*self._tables(), self.max_slots, item, others, done)
                if done < others.shape[0]:
                    self._make_pool_room()

    def seed(self, rows: Rows, neighbour_rows: Rows, counts: F32, item_counts: F32) -> None:
        """Warm start from a batch snapshot: keep the larger of live and snapshot counts (never double-count)."""
        if rows.size == 0:
            return
        self.ensure(int(max(rows.max(), neighbour_rows.max(initial=0))) + 1)
        self.version += 1
        np.maximum.at(self.item_counts, rows, item_counts.astype(np.float64))
        valid = neighbour_rows >= 0
        a = np.broadcast_to(rows[:, None], neighbour_rows.shape)[valid].astype(np.int64)
        b = neighbour_rows[valid].astype(np.int64)
        values = counts[valid].astype(np.float32)
        done = 0
        while done < a.shape[0]:
            done = _seed(*self._tables(), self.max_slots, a, b, values, done)
            if done < a.shape[0]:
                self._make_pool_room()

    def _load(self, a: I64, b: I64, values: F32) -> None:
        """Add values[i] to the count of (a[i], b[i]), that direction only, as far as the budget allows."""
        done = 0
        while done < a.shape[0]:
            done = _load(*self._tables(), self.max_slots, a, b, values, done)
            if done < a.shape[0]:
                self._make_pool_room()

    def _tables(self) -> tuple[I32, F32, I64, I64, I64, I64]:
        return self.keys, self.counts, self.starts, self.caps, self.sizes, self.state

    def _make_pool_room(self) -> None:
        """The pool is out of free slots for a table that grows: drop the tables rows outgrew, and leave as many
        free slots as are in use (a table that grows at most doubles)."""
        live = int(self.state[_LIVE])
        size = max(2 * live, self.keys.shape[0], live + 4 * int(self.caps.max(initial=0)) + 2 * FIRST_BLOCK)
        keys = np.full(size, -1, dtype=np.int32)
        values = np.zeros(size, dtype=np.float32)
        self.state[_USED] = _compact(self.keys, self.counts, self.starts, self.caps, keys, values)
        self.keys, self.counts = keys, values

    # -- reading ---------------------------------------------------------------------------------------------
    def pair_count(self, item: int, other: int) -> float:
        """The count `item`'s table holds for `other` (0 if it holds none)."""
        return float(_lookup(self.keys, self.counts, self.starts, self.caps, item, other))

    def accumulate(self, rows: Rows, weights: F32, acc: F32) -> Rows:
        """acc[j] += w * cosine(r, j) over each history row r (weight w) and each neighbour j it lists, in order;
        returns the rows touched. `acc` must be zero wherever the caller has not reset it."""
        rows64 = rows.astype(np.int64)
        touched = np.empty(int(self.sizes[rows64].sum()) if rows64.size else 0, dtype=np.int64)
        count = _accumulate(
            self.keys, self.counts, self.starts, self.caps, self.item_counts, rows64, weights, acc, touched
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
            self.keys, self.counts, self.starts, self.caps, self.item_counts,
            rows.astype(np.int64), weights, row_offsets, chosen.astype(np.int64), chosen_offsets, best, top, ratio,
        )  # fmt: skip
        return best, top, ratio


# -- the tables (compiled) -----------------------------------------------------------------------------------
@njit(cache=True, inline="always")
def _home(key: int, cap: int) -> int:  # pragma: no cover - compiled
    # Fibonacci hashing's multiplier, low bits: consecutive rows land on distinct slots.
    return (key * 2654435761) & (cap - 1)


@njit(cache=True)
def _slot(keys: I32, start: int, cap: int, key: int) -> int:  # pragma: no cover - compiled
    """The pool position of `key` in the table at `start`, or of the free slot where it would go."""
    pos = _home(key, cap)
    while True:
        at = start + pos
        held = keys[at]
        if held == key or held < 0:
            return at
        pos = (pos + 1) & (cap - 1)


@njit(cache=True)
def _lookup(keys: I32, values: F32, starts: I64, caps: I64, a: int, b: int) -> np.float32:  # pragma: no cover
    cap = caps[a]
    if cap == 0:
        return np.float32(0.0)
    at = _slot(keys, starts[a], cap, b)
    return values[at] if keys[at] == b else np.float32(0.0)


@njit(cache=True)
def _growth(caps: I64, sizes: I64, a: int) -> int:  # pragma: no cover - compiled
    """Slots the table of `a` needs from the pool before one more key fits (0: it has room)."""
    cap = int(caps[a])
    if cap == 0:
        return FIRST_BLOCK
    if 4 * (sizes[a] + 1) > 3 * cap:
        return 2 * cap
    return 0


@njit(cache=True)
def _pool_fits(keys: I32, caps: I64, sizes: I64, state: I64, a: int, b: int) -> bool:  # pragma: no cover
    """Whether the pool has the free slots for a key more in both tables `a` and `b`."""
    return bool(state[_USED] + _growth(caps, sizes, a) + _growth(caps, sizes, b) <= keys.shape[0])


@njit(cache=True)
def _move(keys: I32, values: F32, starts: I64, caps: I64, a: int, to: int, cap: int) -> None:  # pragma: no cover
    """Rehash the table of `a` into `cap` free slots at pool position `to`."""
    old, old_cap = starts[a], caps[a]
    for pos in range(old, old + old_cap):
        key = keys[pos]
        if key >= 0:
            at = _slot(keys, to, cap, key)
            keys[at] = key
            values[at] = values[pos]
            keys[pos] = -1
            values[pos] = 0.0
    starts[a] = to
    caps[a] = cap


@njit(cache=True)
def _make_room(keys: I32, values: F32, starts: I64, caps: I64, sizes: I64, a: int) -> None:  # pragma: no cover
    """Misra-Gries in a full table that may not grow: every count drops by the smallest, those at zero leave;
    the rest are hashed again in place."""
    start, cap = starts[a], caps[a]
    low = np.inf
    for pos in range(start, start + cap):
        if keys[pos] >= 0 and values[pos] < low:
            low = values[pos]
    held_keys = np.empty(sizes[a], dtype=np.int32)
    held_values = np.empty(sizes[a], dtype=np.float32)
    kept = 0
    for pos in range(start, start + cap):
        if keys[pos] >= 0:
            value = values[pos] - np.float32(low)
            if value > 0:
                held_keys[kept] = keys[pos]
                held_values[kept] = value
                kept += 1
            keys[pos] = -1
            values[pos] = 0.0
    for i in range(kept):
        at = _slot(keys, start, cap, held_keys[i])
        keys[at] = held_keys[i]
        values[at] = held_values[i]
    sizes[a] = kept


@njit(cache=True)
def _bump(
    keys: I32, values: F32, starts: I64, caps: I64, sizes: I64, state: I64, max_slots: int, a: int, b: int, by: float
) -> None:  # pragma: no cover - compiled
    """count(a, b) += by; the caller made sure the pool has the slots a growing table takes (`_pool_fits`)."""
    cap = caps[a]
    if cap > 0:
        at = _slot(keys, starts[a], cap, b)
        if keys[at] == b:
            values[at] += np.float32(by)
            return
    grow = _growth(caps, sizes, a)
    if grow:
        if cap == 0 or state[_LIVE] + grow - cap <= max_slots:
            to = state[_USED]
            state[_USED] += grow
            state[_LIVE] += grow - cap
            _move(keys, values, starts, caps, a, to, grow)
        else:  # the pool holds all it may: this row makes room instead
            state[_EVICTIONS] += 1
            _make_room(keys, values, starts, caps, sizes, a)
    at = _slot(keys, starts[a], caps[a], b)
    keys[at] = b
    values[at] = np.float32(by)
    sizes[a] += 1


@njit(cache=True)
def _add_pairs(
    keys: I32, values: F32, starts: I64, caps: I64, sizes: I64, state: I64, max_slots: int, item: int, rows: I64, i: int
) -> int:  # pragma: no cover - compiled
    """Count the pairs of `item` with rows[i:], both directions; returns where it stopped (short of the end: the
    pool needs more slots)."""
    one = 1.0
    while i < rows.shape[0]:
        other = rows[i]
        if other >= 0 and other != item:
            if not _pool_fits(keys, caps, sizes, state, item, other):
                return i
            _bump(keys, values, starts, caps, sizes, state, max_slots, item, other, one)
            _bump(keys, values, starts, caps, sizes, state, max_slots, other, item, one)
        i += 1
    return i


@njit(cache=True)
def _load(
    keys: I32, values: F32, starts: I64, caps: I64, sizes: I64, state: I64, max_slots: int,
    a: I64, b: I64, by: F32, i: int,
) -> int:  # pragma: no cover - compiled  # fmt: skip
    """count(a, b) += by for the entries from i on, that direction only; returns where it stopped. A row that may
    not grow takes no more entries (`from_dense` loads each row's largest first: those stay)."""
    while i < a.shape[0]:
        if not _pool_fits(keys, caps, sizes, state, a[i], a[i]):
            return i
        grow = _growth(caps, sizes, a[i])
        if grow and caps[a[i]] and state[_LIVE] + grow - caps[a[i]] > max_slots:
            state[_EVICTIONS] += 1
        else:
            _bump(keys, values, starts, caps, sizes, state, max_slots, a[i], b[i], by[i])
        i += 1
    return i


@njit(cache=True)
def _seed(
    keys: I32, values: F32, starts: I64, caps: I64, sizes: I64, state: I64, max_slots: int,
    a: I64, b: I64, target: F32, i: int,
) -> int:  # pragma: no cover - compiled  # fmt: skip
    """count(a, b) and count(b, a) = max(count, target) for the pairs from i on; returns where it stopped."""
    while i < a.shape[0]:
        if not _pool_fits(keys, caps, sizes, state, a[i], b[i]):
            return i
        for x, y in ((a[i], b[i]), (b[i], a[i])):
            current = _lookup(keys, values, starts, caps, x, y)
            if target[i] > current:
                _bump(keys, values, starts, caps, sizes, state, max_slots, x, y, target[i] - current)
        i += 1
    return i


@njit(cache=True)
def _compact(keys: I32, values: F32, starts: I64, caps: I64, new_keys: I32, new_values: F32) -> int:  # pragma: no cover
    """Copy every row's table into the new pool, one after another; returns the slots used."""
    used = 0
    for a in range(caps.shape[0]):
        cap = caps[a]
        if cap:
            start = starts[a]
            new_keys[used : used + cap] = keys[start : start + cap]
            new_values[used : used + cap] = values[start : start + cap]
            starts[a] = used
            used += cap
    return used


@njit(cache=True)
def _accumulate(
    keys: I32,
    values: F32,
    starts: I64,
    caps: I64,
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
        start = starts[r]
        for pos in range(start, start + caps[r]):
            j = keys[pos]
            if j < 0:
                continue
            norm = max(np.float32(np.sqrt(own * item_counts[j])), one)
            if acc[j] == 0.0:
                touched[n_touched] = j
                n_touched += 1
            acc[j] = np.float32(acc[j] + np.float32(w * np.float32(values[pos] / norm)))
    return n_touched


@njit(cache=True)
def _strongest(
    keys: I32,
    values: F32,
    starts: I64,
    caps: I64,
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
                value = np.float32(weights[i] * np.float32(_lookup(keys, values, starts, caps, r, j) / norm))
                if value > high:
                    arg = i
                    high = value
                total = np.float32(total + value)
            best[pos] = rows[arg]
            top[pos] = high
            ratio[pos] = np.float32(high / (floor if total < floor else total))
