"""Evaluation baselines: incremental popularity and implicit's ALS (frozen users, or per-event fold-in).

All three implement `models.base.Recommender`, learn one event at a time and give true, checkable reasons:
popularity says how many interactions the item has had so far ("popular"); ALS names the watched item
closest to the recommendation in the item-factor space ("watched").

An *interaction* is the first rating or play of a (user, item) pair; a later event about the same pair only
updates its confidence. Popularity counts interactions (distinct users per item); ties are broken by catalog
order (the item added first wins), so every list is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Self

import numpy as np
import numpy.typing as npt
import scipy.sparse
from threadpoolctl import threadpool_limits

from models.base import Reason, Recommendation, Recommender
from models.events import CatalogItem, Play, Rating, Search, UserEvent

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


def top_n_indices(scores: npt.NDArray[Any], exclude: IntArray, n: int) -> IntArray:
    """Indices of the n highest scores, skipping `exclude`, best first; ties go to the lower index.

    Vectorized: one copy, one argpartition, one small sort. Excluded items are never returned, so the result
    can be shorter than n when the catalog runs out.
    """
    if n <= 0 or scores.size == 0:
        return np.empty(0, dtype=np.int64)
    work = scores.astype(np.float64, copy=True)
    if exclude.size:
        work[exclude] = -np.inf
    m = min(n, work.size)
    if m < work.size:
        cand = np.argpartition(-work, m - 1)[:m]
        # argpartition breaks ties arbitrarily: pull in every item tied with the m-th best, then cut
        threshold = work[cand].min()
        cand = np.flatnonzero(work >= threshold)
    else:
        cand = np.arange(work.size)
    cand = cand[np.isfinite(work[cand])]
    order = np.lexsort((cand, -work[cand]))
    return cand[order][:m].astype(np.int64)


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


@lru_cache(maxsize=65_536)
def popularity_reason(count: int) -> Reason:
    """The one popularity reason every baseline gives; `count` is the item's interactions so far."""
    noun = "view" if count == 1 else "views"
    return Reason("popular", f"popular: {count} {noun} so far", {"count": str(count)})


class _Base(Recommender):
    """Catalog index, per-user interaction weights, interaction counts and event de-duplication."""

    def __init__(self) -> None:
        self._item_index: dict[str, int] = {}
        self._item_ids: list[str] = []
        self._titles: list[str] = []
        self._counts: IntArray = np.zeros(1024, dtype=np.int64)
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
        if idx >= self._counts.size:
            grown = np.zeros(self._counts.size * 2, dtype=np.int64)
            grown[: self._counts.size] = self._counts
            self._counts = grown
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
            self._counts[idx] += 1
        self._on_interaction(event.user_id, idx, new_pair, changed)
        return True

    def _on_interaction(self, user_id: str, idx: int, new_pair: bool, changed: bool) -> None:
        """Hook for subclasses, called after the interaction was recorded (`changed`: the user's row did)."""

    # -- ranking ---------------------------------------------------------------------------------------
    def _popular(self, user_id: str, n: int) -> list[Recommendation]:
        n_items = self.n_items
        counts = self._counts[:n_items]
        # higher count first, then catalog order: an exact integer key, so there are no ties to break
        key = counts * (n_items + 1) + (n_items - np.arange(n_items, dtype=np.int64))
        top = top_n_indices(key, self._history.get(user_id, _NO_HISTORY).items(), n)
        ids, top_counts = self._item_ids, counts[top].tolist()
        return [
            Recommendation(ids[i], r, float(c), (popularity_reason(c),))
            for r, (i, c) in enumerate(zip(top.tolist(), top_counts, strict=True), start=1)
        ]


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
        indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
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
        n_fit = factors.shape[0]
        scores = np.zeros(self.n_items, dtype=np.float32)
        scores[:n_fit] = factors @ vec  # items added since the last retrain score 0
        seen = history.items()
        top = top_n_indices(scores, seen, n)
        # the reason: the watched item whose factors are closest (cosine) to the recommended item's
        known = seen[seen < n_fit] if n_fit < self.n_items else seen
        if known.size:
            sims = unit[np.minimum(top, n_fit - 1)] @ unit[known].T
            nearest = known[np.argmax(sims, axis=1)].tolist()
        else:
            nearest = [-1] * top.size
        ids, counts = self._item_ids, self._counts
        recs: list[Recommendation] = []
        for r, (i, j) in enumerate(zip(top.tolist(), nearest, strict=True), start=1):
            if j < 0 or i >= n_fit:
                reason = popularity_reason(int(counts[i]))
            else:
                reason = self._watched_reasons.get(j) or self._watched_reason(j)
            recs.append(Recommendation(ids[i], r, float(scores[i]), (reason,)))
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
