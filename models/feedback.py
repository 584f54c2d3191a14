"""A consumption's feedback on the blend (`blend.Blend`), compiled: the consumed item against its strongest
contenders, each component as the rankers scale it, and the blends of the grid that would have ranked the item
among their first `HIT_RANK`. Per consumption this is ~60 candidates, where numpy's calls (unique, fancy indexing,
a small matrix product) cost more than the arithmetic: one pass here does it all."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from numba import njit

from streamrec.models.top_k import best_first_into

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]


def strongest(sums: F32, touched: I64, m: int) -> tuple[I64, float]:
    """The `m` rows with the highest positive co-occurrence score (`sums`; `touched`: the rows that may be positive,
    empty for every row), ties by row, and the highest score (0 when none is positive)."""
    out = np.empty(m, dtype=np.int64)
    count, top = _strongest(sums, touched, m, out)
    return out[:count], top


@njit(cache=True)
def _strongest(sums: F32, touched: I64, m: int, out: I64) -> tuple[int, float]:  # pragma: no cover - compiled
    size = touched.shape[0] if touched.shape[0] else sums.shape[0]
    rows = np.empty(size, dtype=np.int64)
    values = np.empty(size, dtype=np.float32)
    count = 0
    top = np.float32(0.0)
    for t in range(size):
        row = touched[t] if touched.shape[0] else t
        v = sums[row]
        if v > 0:
            rows[count] = row
            values[count] = v
            count += 1
            top = max(top, v)
    picked = np.empty(min(m, count), dtype=np.int64)
    k = best_first_into(values[:count], rows[:count], m, picked)
    for i in range(k):
        out[i] = rows[picked[i]]
    return k, float(top)


def blend_hits(
    candidates: I64,
    unwatched: Mask,
    sums: F32,
    cooccurrence_top: float,
    embedding: F64,
    counts: F64,
    popularity_top: float,
    recency: F64,
    recency_top: float,
    experts: F64,
    hit_rank: int,
) -> tuple[int, ...]:
    """The blends (columns of `experts`) under which the consumed item (`candidates[0]`) scores above all but fewer
    than `hit_rank` of the other candidates the viewer has not watched (`unwatched`, by candidate), each counted
    once; ties count against the item. Components, each over its top (0 when the top is not positive):
    co-occurrence (`sums`), the embedding (`embedding`, by candidate: empty for 0), popularity (log1p of `counts`)
    and recency (`recency`)."""
    out = np.empty(experts.shape[1], dtype=np.int64)
    count = _blend_hits(
        candidates, unwatched, sums, cooccurrence_top, embedding, counts, popularity_top, recency, recency_top,
        experts, hit_rank, out,
    )  # fmt: skip
    return tuple(out[:count].tolist())


@njit(cache=True)
def _blend_hits(
    candidates: I64,
    unwatched: Mask,
    sums: F32,
    cooccurrence_top: float,
    embedding: F64,
    counts: F64,
    popularity_top: float,
    recency: F64,
    recency_top: float,
    experts: F64,
    hit_rank: int,
    out: I64,
) -> int:  # pragma: no cover - compiled
    n = candidates.shape[0]
    features = np.zeros((n, 4), dtype=np.float64)
    pool = 0
    for i in range(n):
        row = candidates[i]
        if i > 0:
            if not unwatched[i]:
                continue
            repeated = False
            for j in range(i):  # a few dozen candidates: pairwise is cheaper than a set
                if candidates[j] == row:
                    repeated = True
                    break
            if repeated:
                continue
        if cooccurrence_top > 0:
            features[pool, 0] = np.float64(sums[row]) / cooccurrence_top
        if embedding.shape[0]:
            features[pool, 1] = embedding[i]
        if popularity_top > 0:
            features[pool, 2] = math.log1p(counts[row]) / popularity_top
        if recency_top > 0:
            features[pool, 3] = recency[row] / recency_top
        pool += 1
    hits = 0
    for e in range(experts.shape[1]):
        w0, w1, w2, w3 = experts[0, e], experts[1, e], experts[2, e], experts[3, e]
        mine = features[0, 0] * w0 + features[0, 1] * w1 + features[0, 2] * w2 + features[0, 3] * w3
        beaten = 0
        for c in range(1, pool):
            score = features[c, 0] * w0 + features[c, 1] * w1 + features[c, 2] * w2 + features[c, 3] * w3
            if score >= mine:
                beaten += 1
        if beaten < hit_rank:
            out[hits] = e
            hits += 1
    return hits
