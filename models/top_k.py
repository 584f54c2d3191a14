"""The k best of a score array in a total order: larger score first, equal scores by key (lower first; without
keys, by position). One pass with a heap of k (O(n) when most items lose to its worst at once), so a subset
holding the k best of a larger set, with equal scores and keys, selects exactly them: the candidate ranker's
lists are then those of scoring every item, whatever the ties at the edge."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]

NO_ROWS = np.zeros(0, dtype=np.int64)  # no keys: ties by position


def best_first(scores: F32, k: int, keys: I64 = NO_ROWS) -> I64:
    """Positions of the k best finite scores, best first, equal scores in order of `keys` (lower first; empty:
    of position). Fewer than k when fewer are finite."""
    out = np.empty(max(min(k, scores.shape[0]), 0), dtype=np.int64)
    count = best_first_into(scores, keys, k, out)
    return out[:count]


@njit(cache=True)
def best_first_into(scores: F32, keys: I64, k: int, out: I64) -> int:  # pragma: no cover - compiled
    """`best_first` into `out` (room for min(k, n)); returns the count. A histogram of the finite scores over
    equal-width buckets between their extremes (the bucket is monotonic in the score) finds the bucket of the
    k-th best: the buckets above it are in, and only that bucket's items are compared one by one."""
    n = scores.shape[0]
    k = min(k, out.shape[0])
    lo, hi = np.inf, -np.inf
    finite = 0
    for i in range(n):
        v = scores[i]
        if np.isfinite(v):
            finite += 1
            lo = min(lo, v)
            hi = max(hi, v)
    if k <= 0 or finite == 0:
        return 0
    edge = np.empty(finite, dtype=np.int64)  # the edge bucket's positions, ascending
    if finite <= k:
        count = 0
        for i in range(n):
            if np.isfinite(scores[i]):
                edge[count] = i
                count += 1
        return _ordered(scores, keys, edge, count, count, out, 0)
    buckets = min(1024, finite)
    scale = (buckets - 1) / (hi - lo) if hi > lo else 0.0
    histogram = np.zeros(buckets, dtype=np.int64)
    for i in range(n):
        v = scores[i]
        if np.isfinite(v):
            histogram[int((v - lo) * scale)] += 1
    bar = buckets - 1
    above = 0
    while above + histogram[bar] < k:
        above += histogram[bar]
        bar -= 1
    count = 0
    in_edge = 0
    for i in range(n):
        v = scores[i]
        if np.isfinite(v):
            b = int((v - lo) * scale)
            if b > bar:
                out[count] = i
                count += 1
            elif b == bar:
                edge[in_edge] = i
                in_edge += 1
    # Every score above the edge bucket beats every score in it: order those, then the edge's best.
    _ordered(scores, keys, out[:count].copy(), count, count, out, 0)
    return count + _ordered(scores, keys, edge, in_edge, k - count, out, count)


@njit(cache=True)
def _ordered(scores: F32, keys: I64, rows: I64, size: int, want: int, out: I64, at: int) -> int:  # pragma: no cover
    """The `want` best of positions `rows[:size]` (ascending), best first, into out[at:]; returns want."""
    if want <= 0:
        return 0
    heap = out[at : at + want]
    filled = 0
    for t in range(size):
        i = rows[t]
        if filled < want:
            heap[filled] = i
            _sift_up(scores, keys, heap, filled)
            filled += 1
        elif _worse(scores, keys, heap[0], i):
            heap[0] = i
            _sift_down(scores, keys, heap, 0, filled)
    for end in range(filled - 1, 0, -1):  # heap sort: the worst goes last, so they come out best first
        heap[0], heap[end] = heap[end], heap[0]
        _sift_down(scores, keys, heap, 0, end)
    return filled


@njit(cache=True, inline="always")
def _worse(scores: F32, keys: I64, a: int, b: int) -> bool:  # pragma: no cover - compiled
    """Position a ranks after position b: a lower score, or the same score and a higher key (position)."""
    if scores[a] != scores[b]:
        return bool(scores[a] < scores[b])
    if keys.shape[0]:
        return bool(keys[a] > keys[b])
    return a > b


@njit(cache=True, inline="always")
def _sift_up(scores: F32, keys: I64, heap: I64, at: int) -> None:  # pragma: no cover - compiled
    while at > 0:
        parent = (at - 1) // 2
        if not _worse(scores, keys, heap[at], heap[parent]):
            return
        heap[parent], heap[at] = heap[at], heap[parent]
        at = parent


@njit(cache=True, inline="always")
def _sift_down(scores: F32, keys: I64, heap: I64, at: int, size: int) -> None:  # pragma: no cover - compiled
    while True:
        worst = at
        for child in (2 * at + 1, 2 * at + 2):
            if child < size and _worse(scores, keys, heap[child], heap[worst]):
                worst = child
        if worst == at:
            return
        heap[worst], heap[at] = heap[at], heap[worst]
        at = worst
