"""Evaluation baselines: incremental popularity and implicit's ALS (frozen users, or per-event fold-in).

All three implement `models.base.Recommender`, learn one event at a time and give true, checkable reasons:
popularity says how many interactions the item has had so far ("popular"); ALS names the watched item
closest to the recommendation in the item-factor space ("watched").

An *interaction* is the first rating or play of a (user, item) pair; a later event about the same pair only
updates its confidence. Popularity counts interactions (distinct users per item); ties are broken by catalog
order (the item added first wins), so every list is deterministic.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Self

import numpy as np
import numpy.typing as npt
import scipy.sparse
from numba import njit
from threadpoolctl import threadpool_limits

from streamrec.models import ragged
from streamrec.models.base import Reason, Recommendation, Recommender
from streamrec.models.events import CatalogItem, Play, Rating, Search, UserEvent

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]

__all__ = [
    "ALSFoldIn",
    "ALSParams",
    "ALSRetrained",
    "IncrementalPopularity",
    "popularity_reason",
    "top_n_indices",
]


_COMPILED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def top_n_indices(scores: npt.NDArray[Any], exclude: IntArray, n: int) -> IntArray:
    """Indices of the n highest finite scores, skipping `exclude`, best first; ties go to the lower index.

    Excluded items are never returned, so the result can be shorter than n when the catalog runs out. Float
    scores go through one compiled pass (~4x faster than numpy at catalog sizes); the rest, and the odd cases
    it declines, through numpy: one copy, one partition, one small sort.
    """
    if n <= 0 or scores.size == 0:
        return np.empty(0, dtype=np.int64)
    if scores.dtype in _COMPILED_DTYPES and scores.ndim == 1 and exclude.ndim == 1 and exclude.dtype.kind in "iu":
        # the usual case (ALS scores); it declines NaN, +inf and out-of-range exclusions (numpy's semantics)
        top, handled = _top_finite(scores, exclude.astype(np.int64, copy=False), min(n, scores.size))
        if handled:
            result: IntArray = top
            return result
    # float32 stays float32: widening is exact and keeps the order, and the copy and partition are cheaper
    work: npt.NDArray[np.floating[Any]] = scores.astype(
        np.float32 if scores.dtype == np.float32 else np.float64, copy=True
    )
    if exclude.size:
        work[exclude] = -np.inf
    m = min(n, work.size)
    threshold: float | None = None
    if m < work.size:
        # the m-th best value (NaN sorts last, as the worst); np.partition is ~2.5x faster than argpartition.
        # Every item tied with it is a candidate, so the lexsort below breaks those ties by index.
        threshold = -np.partition(-work, m - 1).item(m - 1)
        cand = (work >= threshold).nonzero()[0]  # (flatnonzero costs twice as much for a 1-d array)
    else:
        cand = np.arange(work.size)
    values = work[cand]
    # a finite threshold leaves only +inf to drop; skip the mask in that (usual) case
    if threshold is None or not (math.isfinite(threshold) and values.max() < np.inf):
        finite = np.isfinite(values)
        cand, values = cand[finite], values[finite]
    order = np.lexsort((cand, -values))
    return cand[order[:m]].astype(np.int64)


@njit(cache=True)
def _top_finite(
    scores: npt.NDArray[np.floating[Any]], exclude: IntArray, m: int
) -> tuple[IntArray, bool]:  # pragma: no cover - compiled
    """`top_n_indices` when every score is finite or -inf and every excluded index is in range: the m best
    finite scores, not excluded, by (score desc, index asc); (empty, False) otherwise, for the numpy path.
    Comparisons only, so the result is exactly the numpy path's."""
    size = scores.size
    skip = np.zeros(size, dtype=np.bool_)
    for i in exclude:
        if i < 0 or i >= size:
            return np.empty(0, dtype=np.int64), False
        skip[i] = True
    best = np.empty(m, dtype=np.int64)
    values = np.empty(m, dtype=scores.dtype)
    count = 0
    for i in range(size):
        if skip[i]:
            continue
        v = scores[i]
        if v != v or v == np.inf:
            return np.empty(0, dtype=np.int64), False
        if v == -np.inf or (count == m and v <= values[m - 1]):
            continue  # not finite, or not better than the m-th (an equal score has a lower index there)
        at = count if count < m else m - 1
        while at > 0 and values[at - 1] < v:  # strict: ties keep the lower index first
            best[at], values[at] = best[at - 1], values[at - 1]
            at -= 1
        best[at], values[at] = i, v
        count = min(count + 1, m)
    return best[:count].copy(), True


class _UserHistory:
    """One user's interactions as growable arrays (item indices in first-interaction order, weights)."""

    __slots__ = ("idx", "n", "pos", "weight")

    def __init__(self) -> None:
        self.n = 0
        self.pos: dict[int, int] = {}
        self.idx: IntArray = np.empty(16, dtype=np.int64)
        self.weight: FloatArray = np.empty(16, dtype=np.float32)

    def add(self, item: int, weight: float) -> tuple[bool, bool]:
        """Record an interaction (a repeated item keeps the larger weight): (the item is new for this user,
        the user's row changed)."""
        at = self.pos.get(item)
        if at is not None:
            if weight <= float(self.weight[at]):
                return False, False
            self.weight[at] = weight
            return False, True
        if self.n == self.idx.size:
            self.idx = np.concatenate([self.idx, np.empty(self.n, dtype=np.int64)])
            self.weight = np.concatenate([self.weight, np.empty(self.n, dtype=np.float32)])
        self.idx[self.n] = item
        self.weight[self.n] = weight
        self.pos[item] = self.n
        self.n += 1
        return True, True

    def items(self) -> IntArray:
        return self.idx[: self.n]

    def weights(self) -> FloatArray:
        return self.weight[: self.n]


_NO_HISTORY = _UserHistory()

_KEY_SPAN = 1 << 40  # more than any catalog index


def _ranking_key(count: int, idx: int) -> int:
    """Orders items by count (desc), then catalog index (asc); an int compares faster than a tuple."""
    return idx - count * _KEY_SPAN


@lru_cache(maxsize=65_536)
def popularity_reason(count: int) -> Reason:
    """The one popularity reason every baseline gives; `count` is the item's interactions so far."""
    noun = "view" if count == 1 else "views"
    return Reason("popular", f"popular: {count} {noun} so far", {"count": str(count)})


class _Base(Recommender):
    """Catalog index, per-user interaction weights, interaction counts (with the popularity ranking they
    give) and event de-duplication."""

    def __init__(self) -> None:
        self._item_index: dict[str, int] = {}
        self._item_ids: list[str] = []
        self._titles: list[str] = []
        self._counts: list[int] = []  # interactions per item (a list: cheaper than numpy for scalar updates)
        # The popularity ranking, kept up to date instead of sorted per list: item indices by (count desc,
        # catalog order), and their `_ranking_key`s in ascending order for bisect.
        self._ranking: list[int] = []
        self._ranking_keys: list[int] = []
        # popularity entries by (item, rank), reused while the item's count is unchanged: building a frozen
        # dataclass costs far more than the lookup, and the top of the ranking changes slowly
        self._popular_recs: dict[tuple[int, int], Recommendation] = {}
        self._history: dict[str, _UserHistory] = {}
        self._seen_events: set[str] = set()

    # -- catalog ---------------------------------------------------------------------------------------
    @property
    def n_items(self) -> int:
        return len(self._item_ids)

    def add_item(self, item: CatalogItem) -> None:
        idx = self._item_index.get(item.item_id)
        if idx is not None:
            self._titles[idx] = item.title
            self._on_title_change(idx)
            return
        self._register(item.item_id, item.title)

    def _on_title_change(self, idx: int) -> None:
        """Hook for subclasses that cache text built from titles."""

    def _register(self, item_id: str, title: str) -> int:
        idx = len(self._item_ids)
        self._item_index[item_id] = idx
        self._item_ids.append(item_id)
        self._titles.append(title)
        self._counts.append(0)
        # count 0 and the highest index: the last place in the ranking
        self._ranking.append(idx)
        self._ranking_keys.append(_ranking_key(0, idx))
        return idx

    # -- learning --------------------------------------------------------------------------------------
    def confidence(self, event: Rating | Play) -> float:
        """The confidence an event gives its (user, item) pair; subclasses weigh ratings differently."""
        return 1.0

    def learn_one(self, event: UserEvent) -> bool:
        if event.event_id in self._seen_events:
            return False
        self._seen_events.add(event.event_id)
        if isinstance(event, Search):
            return True  # baselines do not use searches
        idx = self._item_index.get(event.item_id)
        if idx is None:  # unknown item (validation normally rejects these): make it rankable
            idx = self._register(event.item_id, event.item_id)
        history = self._history.get(event.user_id)
        if history is None:
            history = self._history[event.user_id] = _UserHistory()
        new_pair, changed = history.add(idx, self.confidence(event))
        if new_pair:
            self._count_one(idx)
        self._on_interaction(event.user_id, idx, new_pair, changed)
        return True

    def _count_one(self, idx: int) -> None:
        """One more interaction with the item: move it up the ranking, past the items it now outranks."""
        count = self._counts[idx]
        self._counts[idx] = count + 1
        keys, ranking = self._ranking_keys, self._ranking
        at = bisect_left(keys, _ranking_key(count, idx))
        key = _ranking_key(count + 1, idx)
        to = bisect_left(keys, key, 0, at)  # <= at: its key only decreases
        if to < at:  # shift only the items it passes (few: it moves into the block just above its own)
            keys[to + 1 : at + 1] = keys[to:at]
            ranking[to + 1 : at + 1] = ranking[to:at]
            ranking[to] = idx
        keys[to] = key

    def _on_interaction(self, user_id: str, idx: int, new_pair: bool, changed: bool) -> None:
        """Hook for subclasses, called after the interaction was recorded (`changed`: the user's row did)."""

    # -- ranking ---------------------------------------------------------------------------------------
    def _popular(self, user_id: str, n: int) -> list[Recommendation]:
        """The n most interacted-with items the user has not interacted with (count desc, catalog order)."""
        recs: list[Recommendation] = []
        if n <= 0:
            return recs
        seen = self._history.get(user_id, _NO_HISTORY).pos
        cache, counts, ids = self._popular_recs, self._counts, self._item_ids
        # walk the maintained ranking: only the user's seen items near the top are skipped
        for idx in self._ranking:
            if idx in seen:
                continue
            rank, count = len(recs) + 1, counts[idx]
            rec = cache.get((idx, rank))
            if rec is None or rec.score != count:
                rec = cache[idx, rank] = Recommendation(ids[idx], rank, float(count), (popularity_reason(count),))
            recs.append(rec)
            if rank == n:
                break
        return recs


class IncrementalPopularity(_Base):
    """Most interacted-with items so far (distinct users), ties broken by catalog order."""

    name = "popularity"

    def rank(self, user_id: str, n: int) -> list[Recommendation]:
        return self._popular(user_id, n)


@dataclass(frozen=True)
class ALSParams:
    """implicit ALS settings. Confidence of a pair = alpha * value, value = 1 for a play or
    1 + rating_weight * (rating - 1) / 4 for a rating (so 1..1+rating_weight over a 1..5 scale)."""

    every: int = 5000  # retrain after this many new interactions
    factors: int = 64
    regularization: float = 0.05
    alpha: float = 2.0
    iterations: int = 15
    rating_weight: float = 0.0
    seed: int = 0
    num_threads: int = 1


class _ALSBase(_Base):
    """Periodically retrained implicit ALS item factors; how user vectors are kept is up to subclasses."""

    def __init__(
        self,
        every: int = ALSParams.every,
        factors: int = ALSParams.factors,
        *,
        regularization: float = ALSParams.regularization,
        alpha: float = ALSParams.alpha,
        iterations: int = ALSParams.iterations,
        rating_weight: float = ALSParams.rating_weight,
        seed: int = ALSParams.seed,
        num_threads: int = ALSParams.num_threads,
    ) -> None:
        super().__init__()
        params = ALSParams(every, factors, regularization, alpha, iterations, rating_weight, seed, num_threads)
        if params.every < 1:
            raise ValueError("every must be >= 1")
        self.params = params
        self._user_index: dict[str, int] = {}
        self._since_retrain = 0
        self.retrains = 0
        self._model: Any = None
        self._item_factors: FloatArray | None = None  # rows for the items known at the last retrain
        self._item_unit: FloatArray | None = None  # the same, L2-normalised, for explanations
        self._fit_user_factors: FloatArray | None = None
        self._fit_users = 0
        self._row: scipy.sparse.csr_matrix | None = None
        self._watched_reasons: dict[int, Reason] = {}  # per watched item: its (immutable) reason
        self._init_user_state()

    def _init_user_state(self) -> None:
        """Subclasses set up how they keep user vectors."""

    @classmethod
    def from_params(cls, params: ALSParams) -> Self:
        p = params
        return cls(
            p.every,
            p.factors,
            regularization=p.regularization,
            alpha=p.alpha,
            iterations=p.iterations,
            rating_weight=p.rating_weight,
            seed=p.seed,
            num_threads=p.num_threads,
        )

    def confidence(self, event: Rating | Play) -> float:
        """alpha * value (implicit's alpha is applied here, so the model itself runs with alpha = 1)."""
        value = 1.0
        if isinstance(event, Rating):
            value += self.params.rating_weight * (event.rating - 1.0) / 4.0
        return self.params.alpha * value

    def _on_interaction(self, user_id: str, idx: int, new_pair: bool, changed: bool) -> None:
        if not new_pair:
            return
        if user_id not in self._user_index:
            self._user_index[user_id] = len(self._user_index)
        self._since_retrain += 1
        if self._since_retrain >= self.params.every:
            self.retrain()

    def _user_row(self, user_id: str, n_cols: int) -> scipy.sparse.csr_matrix:
        """The user's confidences as a 1 x n_cols CSR row (only items known to the model)."""
        history = self._history.get(user_id, _NO_HISTORY)
        cols, data = history.items(), history.weights()
        if cols.size and int(cols.max()) >= n_cols:
            keep = cols < n_cols
            cols, data = cols[keep], data[keep]
        row = self._row
        if row is None or row.shape[1] != n_cols:
            row = self._row = scipy.sparse.csr_matrix((1, n_cols), dtype=np.float32)
        # Swap the arrays of one reused matrix: building a csr_matrix validates its input and costs more than
        # the fold-in itself. recalculate_user reads only indptr/indices/data (order-free) and shape.
        row.data = data.astype(np.float32, copy=True)
        row.indices = cols.astype(np.int32)
        row.indptr = np.array([0, cols.size], dtype=np.int32)
        return row

    def retrain(self) -> None:
        """Fit ALS on every interaction so far (confidence = the pair's current weight)."""
        from implicit.cpu.als import AlternatingLeastSquares

        self._since_retrain = 0
        n_users, n_items = len(self._user_index), self.n_items
        if n_users == 0:
            return
        histories = [self._history[u] for u in self._user_index]
        lengths = np.array([h.n for h in histories], dtype=np.int64)
        indptr = ragged.offsets(lengths).astype(np.int32)
        cols = np.concatenate([h.items() for h in histories]).astype(np.int32)
        data = np.concatenate([h.weights() for h in histories]).astype(np.float32)
        matrix = scipy.sparse.csr_matrix((data, cols, indptr), shape=(n_users, n_items))
        matrix.sort_indices()
        p = self.params
        with threadpool_limits(limits=1, user_api="blas"):
            model = AlternatingLeastSquares(
                factors=p.factors,
                regularization=p.regularization,
                alpha=1.0,
                iterations=p.iterations,
                random_state=p.seed + self.retrains,
                num_threads=p.num_threads,
            )
            model.fit(matrix, show_progress=False)
        self._model = model
        item_factors = np.ascontiguousarray(model.item_factors, dtype=np.float32)
        self._item_factors = item_factors
        norms = np.linalg.norm(item_factors, axis=1, keepdims=True)
        self._item_unit = item_factors / np.maximum(norms, 1e-12)
        self._fit_user_factors = np.ascontiguousarray(model.user_factors, dtype=np.float32)
        self._fit_users = n_users
        self.retrains += 1
        self._after_retrain()

    def _after_retrain(self) -> None:
        """Hook for subclasses."""

    def _on_title_change(self, idx: int) -> None:
        self._watched_reasons.pop(idx, None)

    def _watched_reason(self, j: int) -> Reason:
        reason = Reason("watched", f"because you watched {self._titles[j]}", {"item_id": self._item_ids[j]})
        self._watched_reasons[j] = reason
        return reason

    def _user_vector(self, user_id: str) -> FloatArray | None:
        raise NotImplementedError

    def rank(self, user_id: str, n: int) -> list[Recommendation]:
        vec = self._user_vector(user_id)
        history = self._history.get(user_id)
        factors, unit = self._item_factors, self._item_unit
        if vec is None or factors is None or unit is None or history is None or history.n == 0:
            return self._popular(user_id, n)
        n_fit, n_items = factors.shape[0], self.n_items
        if n_fit == n_items:
            scores: FloatArray = factors @ vec
        else:
            scores = np.zeros(n_items, dtype=np.float32)
            scores[:n_fit] = factors @ vec  # items added since the last retrain score 0
        seen = history.items()
        top = top_n_indices(scores, seen, n)
        # the reason: the watched item whose factors are closest (cosine) to the recommended item's
        known = seen[seen < n_fit] if n_fit < n_items else seen
        if known.size:
            sims = unit[np.minimum(top, n_fit - 1) if n_fit < n_items else top] @ unit[known].T
            nearest = known[np.argmax(sims, axis=1)].tolist()
        else:
            nearest = [-1] * top.size
        ids, counts, watched = self._item_ids, self._counts, self._watched_reasons
        recs: list[Recommendation] = []
        top_ids = top.tolist()
        top_scores = scores[top].tolist()  # the float32 scores as Python floats (exact), in one call
        for r, (i, j, score) in enumerate(zip(top_ids, nearest, top_scores, strict=True), start=1):
            fresh = j < 0 or i >= n_fit  # no watched item to name, or the item is newer than the factors
            reason = popularity_reason(counts[i]) if fresh else watched.get(j) or self._watched_reason(j)
            recs.append(Recommendation(ids[i], r, score, (reason,)))
        return recs


class ALSRetrained(_ALSBase):
    """implicit ALS retrained on all interactions every `every` interactions; user vectors frozen between
    retrains (a user unseen at the last retrain gets the popularity list)."""

    name = "als-retrained"

    def _user_vector(self, user_id: str) -> FloatArray | None:
        uidx = self._user_index.get(user_id)
        if uidx is None or uidx >= self._fit_users or self._fit_user_factors is None:
            return None
        vector: FloatArray = self._fit_user_factors[uidx]
        return vector


class ALSFoldIn(_ALSBase):
    """The same periodically retrained item factors; each user's vector is recomputed after each of their
    interactions with implicit's `recalculate_user` (an exact least-squares fold-in against fixed items)."""

    name = "als-foldin"

    def _init_user_state(self) -> None:
        self._vectors: dict[str, FloatArray] = {}
        self._stale: set[str] = set()  # users whose row changed since their vector was computed

    def _after_retrain(self) -> None:
        assert self._fit_user_factors is not None
        self._vectors = {u: self._fit_user_factors[i] for u, i in self._user_index.items() if i < self._fit_users}
        self._stale.clear()  # the fit saw every interaction so far

    def _on_interaction(self, user_id: str, idx: int, new_pair: bool, changed: bool) -> None:
        before = self.retrains
        super()._on_interaction(user_id, idx, new_pair, changed)
        if changed and self._model is not None and self.retrains == before:
            self._stale.add(user_id)  # (a retrain on this very interaction already gave a fresh vector)

    def _user_vector(self, user_id: str) -> FloatArray | None:
        """The fold-in is computed when the vector is next needed; nothing else reads the row in between, so
        this is the vector recalculate_user gives right after the event, without solving for lists that are
        never asked for."""
        if user_id in self._stale:
            self._stale.discard(user_id)
            assert self._item_factors is not None
            row = self._user_row(user_id, self._item_factors.shape[0])
            if row.nnz:
                vec = self._model.recalculate_user(0, row)
                self._vectors[user_id] = np.asarray(vec, dtype=np.float32)
        return self._vectors.get(user_id)
