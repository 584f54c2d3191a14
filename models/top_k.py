"""The k best of a score array in a total order: larger score first, equal scores by key (lower first; without
keys, by position). Selected in O(n) (a partition finds the k-th best score; only that score's ties are ordered
by key), so a subset holding the k best of a larger set, with equal scores and keys, selects exactly them: the
candidate ranker's lists are then those of scoring every item, whatever the ties at the edge."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]

_BY_POSITION = np.zeros(0, dtype=np.int64)


def best_first(scores: F32, k: int, keys: I64 = _BY_POSITION) -> I64:
    """Positions of the k best finite scores, best first, equal scores in order of `keys` (lower first; empty:
    of position). Fewer than k when fewer are finite."""
    out = np.empty(max(min(k, scores.shape[0]), 0), dtype=np.int64)
    count = _best_first(scores, keys, k, np.empty(scores.shape[0], dtype=scores.dtype), out)
    return out[:count]


def best_first_rows(scores: F32, k: int) -> tuple[I64, F32, I64]:
    """`best_first` of each row of a 2-D array, concatenated: (columns, their scores, offsets)."""
    users, n = scores.shape
    width = max(min(k, n), 0)
    columns = np.empty(users * width, dtype=np.int64)
    offsets = np.zeros(users + 1, dtype=np.int64)
    _best_first_rows(scores, k, columns, offsets)
    end = int(offsets[-1])
    relevance = scores[np.repeat(np.arange(users), np.diff(offsets)), columns[:end]]
    return columns[:end], relevance, offsets


@njit(cache=True)
def _best_first_rows(scores: F32, k: int, columns: I64, offsets: I64) -> None:  # pragma: no cover - compiled
    scratch = np.empty(scores.shape[1], dtype=scores.dtype)
    out = np.empty(max(min(k, scores.shape[1]), 0), dtype=np.int64)
    for u in range(scores.shape[0]):
        count = _best_first(scores[u], _BY_POSITION, k, scratch, out)
        columns[offsets[u] : offsets[u] + count] = out[:count]
        offsets[u + 1] = offsets[u] + count


@njit(cache=True)
def _best_first(scores: F32, keys: I64, k: int, scratch: F32, out: I64) -> int:  # pragma: no cover - compiled
    """`best_first` into `out` (room for min(k, n)); returns the count. `scratch`: n values of any content."""
    finite = 0
    for i in range(scores.shape[0]):
        if np.isfinite(scores[i]):
            scratch[finite] = scores[i]
            finite += 1
    k = min(k, finite)
    if k <= 0:
        return 0
    edge = np.partition(scratch[:finite], finite - k)[finite - k]  # the k-th best finite score
    count = 0
    for i in range(scores.shape[0]):
        if edge < scores[i] < np.inf:
            out[count] = i
            count += 1
    # Ties at the edge: the lowest keys (positions) among them fill the rest.
    if keys.shape[0] == 0:
        for i in range(scores.shape[0]):
            if count == k:
                break
            if scores[i] == edge:
                out[count] = i
                count += 1
        chosen = out[:k]
    else:
        tied = np.flatnonzero(scores == edge)
        tied = tied[np.argsort(keys[tied], kind="mergesort")]
        out[count:k] = tied[: k - count]
        chosen = out[:k]
        chosen[:] = chosen[np.argsort(keys[chosen], kind="mergesort")]
    # Best first; a stable sort keeps equal scores in key (position) order.
    chosen[:] = chosen[np.argsort(-scores[chosen], kind="mergesort")]
    return k
