"""Ranking for large catalogs: streamrec's score, computed only for each user's candidates.

Scoring every item costs O(catalog) per list. The candidates are where a high score can come from: the items
co-watched with the recent history (every item with a co-occurrence score is one), the nearest items to the
profile embedding (approximate, faiss IVF), the most popular and trending items, and the items matching recent
searches. Each candidate gets the exact score of `Ranker`; what is lost is an item outside all four sets that
would have made the top only by its embedding score (its weight is small), so the lists' recall against scoring
every item is what `streamrec bench` measures (`exhaustive=True` is that reference: the same code with every
item a candidate).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from numba import njit

from streamrec.models import ragged
from streamrec.models.item_side import ItemSide
from streamrec.models.params import StreamParams
from streamrec.models.profile import UserProfile
from streamrec.models.ranking import RankedLists, Ranker
from streamrec.models.ranking_common import F32, I64, RankedUser, Rows, scatter_strongest, watched_hashes
from streamrec.models.search_intent import fresh_searches
from streamrec.models.sparse_cooccurrence import SparseCooccurrence
from streamrec.models.top_k import best_first

_NONE = np.zeros(0, dtype=np.int64)
_NO_EMBEDDING = np.zeros(0, dtype=np.float32)
_NO_SCORES = np.zeros(0, dtype=np.float32)
_NO_ROWS = np.zeros(0, dtype=np.intp)


class CandidateRanker(Ranker):
    """`Ranker`'s lists, each scored over its viewer's candidates (`exhaustive`: over every item). The nearest items
    to an embedding come from the item side's index."""

    def __init__(self, items: ItemSide, params: StreamParams, *, exhaustive: bool = False) -> None:
        super().__init__(items, params)
        self.index = items.index
        self.exhaustive = exhaustive
        self._acc = np.zeros(0, dtype=np.float32)  # co-occurrence scratch, all zeros between users
        self._mark = np.zeros(0, dtype=np.bool_)  # candidate scratch, all False between users
        self._query_rows: dict[str, I64] = {}
        self._query_rows_version = -1
        self._norms = np.zeros(0, dtype=np.float32)  # |item vector| per row, for `_embed_best`
        self._norms_of: F32 | None = None

    def rank_lists(self, profiles: Sequence[UserProfile | None], n: int) -> RankedLists:
        p = self.params
        n_items = len(self.items.catalog)
        if n_items == 0 or not profiles:
            return super().rank_lists(profiles, n)
        self._sync_catalog()
        if self._acc.shape[0] < n_items:
            self._acc = np.zeros(n_items, dtype=np.float32)
            self._mark = np.zeros(n_items, dtype=np.bool_)
        if self._catalog_version != self._query_rows_version:
            self._query_rows.clear()
            self._query_rows_version = self._catalog_version
        vectors = self.items.vectors
        nearest = self._nearest(profiles, vectors)
        popular = self._popular(n_items)
        users: list[RankedUser] = []
        candidates: list[I64] = []
        scores: list[F32] = []
        for u, profile in enumerate(profiles):
            user, rows, user_scores = self._score(profile, vectors, nearest[u], popular, n_items)
            users.append(user)
            candidates.append(rows)
            scores.append(user_scores)
        flat_rows, starts = ragged.join(candidates, _NONE)
        flat_scores = ragged.flatten(scores, _NO_SCORES)
        # Candidates are sorted rows: the pool's ties by position are ties by row.
        picks, offsets = self._pick(flat_scores, starts, p.candidates, users, n, flat_rows)
        at = picks + np.repeat(starts[:-1], np.diff(offsets))
        bounds = offsets.tolist()
        chosen = [flat_rows[at[bounds[u] : bounds[u + 1]]] for u in range(len(users))]
        chosen_scores = flat_scores[at]
        neighbours = self._strongest(users, chosen)
        return self._explained(
            chosen, [chosen_scores[bounds[u] : bounds[u + 1]] for u in range(len(users))], users, neighbours
        )

    def prepare(self, vectors: F32) -> None:
        """Build the item index of `vectors` (`ItemSide.vectors`) now, a catalog just loaded, rather than in the
        first list's time. Safe in another thread while this one ranks (`ItemIndex` is locked); the vectors are
        a snapshot, so the catalog may change meanwhile (the next search adds what changed)."""
        if vectors.shape[0] and not self.exhaustive:
            self.index.search(vectors, np.zeros((1, vectors.shape[1]), dtype=np.float32), 1)

    @property
    def index_builds(self) -> int:
        return self.index.rebuilds

    # -- candidates ---------------------------------------------------------------------------------------
    def _nearest(self, profiles: Sequence[UserProfile | None], vectors: F32) -> list[Rows | None]:
        """Per user, the approximate nearest items to the embedding (one batched search for all users)."""
        out: list[Rows | None] = [None] * len(profiles)
        if self.exhaustive:
            return out
        users = [
            u
            for u, profile in enumerate(profiles)
            if profile is not None and profile.embedding.shape[0] == vectors.shape[1] and profile.embedding.any()
        ]
        if users:
            queries = np.stack([profiles[u].embedding for u in users])  # type: ignore[union-attr]
            found = self.index.search(vectors, queries, min(self.params.ann_candidates, vectors.shape[0]))
            for u, rows in zip(users, found, strict=True):
                out[u] = rows[rows >= 0].astype(np.int64)
        return out

    def _popular(self, n_items: int) -> Rows:
        """The items with the best popularity + trending score as the call starts, by row (candidates are sorted:
        alone, these are a user's candidates)."""
        base = self._popularity_trending(n_items)
        k = min(self.params.popular_candidates, n_items)
        if self.exhaustive or k >= n_items:
            return np.arange(n_items, dtype=np.int64)
        return np.sort(best_first(base, k))  # ties by row, as the relevance pool breaks them

    # -- scoring ------------------------------------------------------------------------------------------
    def _score(
        self, profile: UserProfile | None, vectors: F32, nearest: Rows | None, popular: Rows, n_items: int
    ) -> tuple[RankedUser, Rows, F32]:
        """The user's candidates (sorted rows) and their scores, as `Ranker` scores them."""
        p = self.params
        now = profile.last_ts if profile is not None else self.items.trending.now
        as_of = self.items.advance_trending(now)
        base = self._popularity_trending(n_items)
        rows, weights = self.recent_history(profile)
        user = RankedUser(profile, now, as_of, self._base_trending, rows, weights, [])
        parts = [popular]
        touched = _NONE
        cooc = self.items.cooccurrence
        assert isinstance(cooc, SparseCooccurrence)
        if rows is not None and rows.size:
            touched = cooc.accumulate(rows, weights, self._acc)
            parts.append(self._most_cowatched(touched))
        if nearest is not None:
            parts.append(nearest)
        searches = self._recent_searches(profile, now)
        for search, _ in searches:
            parts.append(self._query_candidates(search))
        candidates = _union(parts, self._mark) if len(parts) > 1 else popular
        if self.items.catalog.removed:
            candidates = candidates[self.items.catalog.live_rows()[candidates]]
        top = np.float32(self._acc[touched].max()) if touched.size else np.float32(0.0)
        embedding, norm = _NO_EMBEDDING, 0.0
        if profile is not None and rows is not None and profile.embedding.shape[0] == vectors.shape[1]:
            embedding = profile.embedding
            norm = float(np.sqrt(embedding.dot(embedding)))
        scores = np.empty(candidates.shape[0], dtype=np.float32)
        w_cooccurrence, w_embedding, _, _ = self.items.blend.weights
        _base_and_cooccurrence(candidates, base, self._acc, top, w_cooccurrence, scores)
        self._acc[touched] = 0.0
        searched = None
        if searches:
            intent = np.zeros(candidates.shape[0], dtype=np.float32)
            for search, decay in searches:
                matches, rows, values = self._query(search)
                _max_at(candidates, rows.astype(np.int64, copy=False), values, np.float32(decay), intent)
                user.per_query.append((search, matches))
            searched = p.w_search * intent
        seen = None
        if profile is not None and profile.watched:
            keys, key_rows = self.items.catalog.hash_index()
            seen = _seen_positions(keys, key_rows, watched_hashes([user])[0], candidates)
        if norm > 0:
            if not self.exhaustive and candidates.shape[0] > p.candidates:  # exhaustive: every item, as `Ranker`
                keep = self._embed_best(scores, searched, seen, candidates, vectors, embedding, norm, w_embedding)
                return user, candidates[keep], scores[keep]
            _add_embedding(candidates, vectors, embedding, norm, w_embedding, scores)
        if searched is not None:
            scores += searched
        if seen is not None:
            scores[seen] = -np.inf
        return user, candidates, scores

    def _embed_best(
        self,
        partial: F32,
        searched: F32 | None,
        seen: Rows | None,
        candidates: I64,
        vectors: F32,
        embedding: F32,
        norm: float,
        w_embedding: float,
    ) -> Rows:
        """Add the embedding term (and the search term) to the candidates that can make the top `candidates`, in
        place; returns their positions, ascending. The term is at most w_embedding × |item vector|, so taken in
        order of that best case, the candidates stop counting once the best case falls below the k-th best
        score found: the same top, without the dot products that cannot matter."""
        if self._norms_of is not vectors:
            self._norms = np.linalg.norm(vectors, axis=1).astype(np.float32)
            self._norms_of = vectors
        return _embed_best(
            partial,
            searched if searched is not None else _NO_SCORES,
            seen if seen is not None else _NONE,
            self._norms,
            candidates,
            vectors,
            embedding,
            norm,
            w_embedding,
            self.params.candidates,
        )

    def _most_cowatched(self, touched: Rows) -> Rows:
        """The `cowatched_candidates` items with the largest co-occurrence scores among those touched (every one
        when `exhaustive`): a popular item in the history is co-watched with thousands of items, most of them
        once, and those need another signal to make the top (which brings them in as the other candidates)."""
        k = self.params.cowatched_candidates
        if self.exhaustive or touched.shape[0] <= k:
            return touched
        return touched[best_first(self._acc[touched], k, touched)]  # ties by row

    def sources(self, profile: UserProfile | None) -> dict[str, Rows]:
        """Each candidate source's rows for one viewer, as `rank_lists` would take them now (what the large-catalog
        benchmark measures the recall of)."""
        n_items = len(self.items.catalog)
        self._sync_catalog()
        if self._acc.shape[0] < n_items:
            self._acc = np.zeros(n_items, dtype=np.float32)
            self._mark = np.zeros(n_items, dtype=np.bool_)
        vectors = self.items.vectors
        now = profile.last_ts if profile is not None else self.items.trending.now
        self.items.advance_trending(now)
        found = {"popular": self._popular(n_items), "co-watched": _NONE, "nearest": _NONE, "searched": _NONE}
        rows, weights = self.recent_history(profile)
        cooc = self.items.cooccurrence
        assert isinstance(cooc, SparseCooccurrence)
        if rows is not None and rows.size:
            touched = cooc.accumulate(rows, weights, self._acc)
            found["co-watched"] = self._most_cowatched(touched).copy()
            found["co-watched, all"] = touched
            self._acc[touched] = 0.0
        nearest = self._nearest([profile], vectors)[0]
        if nearest is not None:
            found["nearest"] = nearest
        searched = [self._query_candidates(search) for search, _ in self._recent_searches(profile, now)]
        if searched:
            found["searched"] = _union(searched, self._mark)
        return found

    def _recent_searches(self, profile: UserProfile | None, now: int) -> list[tuple[str, float]]:
        """(query, decay) of the searches `Ranker._intent` counts: not faded out, matching something."""
        if profile is None or not profile.searches:
            return []
        half_life = self.params.search_half_life_ms
        return [
            (search.query, decay)
            for search, decay in fresh_searches(profile.searches, now, half_life)
            if self._query(search.query)[0]
        ]

    def _query_candidates(self, query: str) -> Rows:
        """A query's best matches: by match score, then by popularity as first seen (a genre query matches
        thousands of items equally; the other signals decide among those, so the most viewed stand in)."""
        cached = self._query_rows.get(query)
        if cached is None:
            if len(self._query_rows) >= len(self._queries) + 1024:
                self._query_rows.clear()
            _, rows, values = self._query(query)
            popularity = self.items.cooccurrence.item_counts[rows]
            order = np.lexsort((-popularity, -values))[: self.params.query_candidates]
            cached = self._query_rows[query] = np.sort(rows[order]).astype(np.int64)
        return cached

    def _strongest(self, users: list[RankedUser], chosen: list[Rows]) -> tuple[I64, npt.NDArray[np.float64]]:
        """As `Ranker._neighbours`, from the sparse counts."""
        sizes = [c.shape[0] for c in chosen]
        neighbours = np.full(sum(sizes), -1, dtype=np.int64)
        shares = np.zeros(neighbours.shape[0], dtype=np.float64)
        batched = [u for u, user in enumerate(users) if user.history_rows is not None and user.history_rows.size]
        if not batched:
            return neighbours, shares
        history, history_offsets = ragged.join(
            [rows for u in batched if (rows := users[u].history_rows) is not None], _NO_ROWS
        )
        columns, column_offsets = ragged.join([chosen[u] for u in batched], _NO_ROWS)
        cooc = self.items.cooccurrence
        assert isinstance(cooc, SparseCooccurrence)
        best, top, ratio = cooc.strongest(
            history,
            ragged.flatten([users[u].history_weights for u in batched], _NO_SCORES),
            history_offsets,
            columns,
            column_offsets,
        )
        scatter_strongest(neighbours, shares, batched, sizes, best, top, ratio)
        return neighbours, shares


def _union(parts: list[I64], mark: npt.NDArray[np.bool_]) -> I64:
    """The distinct rows of all parts, sorted."""
    rows = np.concatenate(parts)
    out = np.empty(rows.shape[0], dtype=np.int64)
    return np.sort(out[: _distinct(rows, mark, out)])


@njit(cache=True)
def _distinct(rows: I64, mark: npt.NDArray[np.bool_], out: I64) -> int:  # pragma: no cover - compiled
    count = 0
    for r in rows:
        if not mark[r]:
            mark[r] = True
            out[count] = r
            count += 1
    for i in range(count):
        mark[out[i]] = False
    return count


@njit(cache=True)
def _embed_best(
    partial: F32,
    searched: F32,
    seen: I64,
    norms: F32,
    candidates: I64,
    vectors: F32,
    embedding: F32,
    norm: float,
    w_embedding: float,
    k: int,
) -> I64:  # pragma: no cover - compiled
    """`CandidateRanker._embed_best`: partial[i] += w_e * (vector . embedding) / norm, then + searched[i], as
    `_add_embedding` and numpy's float32 steps take them, for the candidates (seen ones aside) in order of
    their best case known + w_e * |v| * 1.001 + 1e-6, until that falls below the k-th best score so far."""
    n = candidates.shape[0]
    we = np.float32(w_embedding)
    norm32 = np.float32(norm)
    dim = embedding.shape[0]
    with_search = searched.shape[0] > 0
    upper = np.empty(n, dtype=np.float32)
    lowest = np.empty(n, dtype=np.float32)
    for i in range(n):
        margin = np.float32(np.float32(we * norms[candidates[i]]) * np.float32(1.001)) + np.float32(1e-6)
        known = np.float32(partial[i] + searched[i]) if with_search else partial[i]
        upper[i] = known + margin
        lowest[i] = known - margin
    for s in seen:
        upper[s] = -np.inf
        lowest[s] = -np.inf
    # The k-th best worst case is a first bar: only the candidates whose best case reaches it are ordered.
    bar = np.partition(lowest, n - k)[n - k] if n > k else -np.inf
    reach = np.flatnonzero(upper >= bar) if np.isfinite(bar) else np.flatnonzero(upper > -np.inf)
    order = reach[np.argsort(-upper[reach])]
    heap = np.empty(k, dtype=np.float32)  # the k best scores so far, a min-heap
    size = 0
    done = np.zeros(n, dtype=np.bool_)
    count = 0
    for i in order:
        if upper[i] == -np.inf or (size == k and upper[i] < heap[0]):
            break
        dot = _dot(vectors[candidates[i]], embedding, dim)
        score = np.float32(partial[i] + np.float32(np.float32(we * dot) / norm32))
        if with_search:
            score = np.float32(score + searched[i])
        partial[i] = score
        done[i] = True
        count += 1
        if size < k:
            heap[size] = score
            size += 1
            _sift_up(heap, size - 1)
        elif score > heap[0]:
            heap[0] = score
            _sift_down(heap, size)
    keep = np.empty(count, dtype=np.int64)
    count = 0
    for i in range(n):
        if done[i]:
            keep[count] = i
            count += 1
    return keep


@njit(cache=True, inline="always")
def _sift_up(heap: F32, at: int) -> None:  # pragma: no cover - compiled
    while at > 0:
        parent = (at - 1) // 2
        if heap[parent] <= heap[at]:
            return
        heap[parent], heap[at] = heap[at], heap[parent]
        at = parent


@njit(cache=True, inline="always")
def _sift_down(heap: F32, size: int) -> None:  # pragma: no cover - compiled
    at = 0
    while True:
        low = at
        for child in (2 * at + 1, 2 * at + 2):
            if child < size and heap[child] < heap[low]:
                low = child
        if low == at:
            return
        heap[low], heap[at] = heap[at], heap[low]
        at = low


@njit(cache=True)
def _seen_positions(keys: I64, key_rows: Rows, hashes: I64, candidates: I64) -> I64:  # pragma: no cover - compiled
    """Positions in `candidates` (sorted rows) of the items whose hash is in `hashes` (a profile's watched items;
    `keys`/`key_rows`: `Catalog.hash_index`, where equal hashes resolve to the last row, as `row_of_hash` does)."""
    out = np.empty(hashes.shape[0], dtype=np.int64)
    count = 0
    n = candidates.shape[0]
    for h in hashes:
        pos = np.searchsorted(keys, h, side="right") - 1
        if pos < 0 or keys[pos] != h:
            continue
        row = key_rows[pos]
        at = np.searchsorted(candidates, row)
        if at < n and candidates[at] == row:
            out[count] = at
            count += 1
    return out[:count]


@njit(cache=True)
def _base_and_cooccurrence(
    candidates: I64, base: F32, acc: F32, top: np.float32, w_cooccurrence: float, out: F32
) -> None:  # pragma: no cover - compiled
    """base + w_c * acc / top (when top > 0), in float32 as `Ranker` takes the steps."""
    wc = np.float32(w_cooccurrence)
    for i in range(candidates.shape[0]):
        c = candidates[i]
        score = base[c]
        if top > 0:
            score = np.float32(score + np.float32(wc * np.float32(acc[c] / top)))
        out[i] = score


@njit(cache=True)
def _add_embedding(
    candidates: I64, vectors: F32, embedding: F32, norm: float, w_embedding: float, out: F32
) -> None:  # pragma: no cover - compiled
    """out += w_e * (vector . embedding) / norm, in float32 as `Ranker` takes the steps (the dot product sums in
    its own order, vectorised: BLAS's may differ in the last bits)."""
    we = np.float32(w_embedding)
    norm32 = np.float32(norm)
    dim = embedding.shape[0]
    for i in range(candidates.shape[0]):
        dot = _dot(vectors[candidates[i]], embedding, dim)
        out[i] = np.float32(out[i] + np.float32(np.float32(we * dot) / norm32))


@njit(cache=True, fastmath=True, inline="always")
def _dot(vector: F32, embedding: F32, dim: int) -> np.float32:  # pragma: no cover - compiled
    total = np.float32(0.0)
    for d in range(dim):
        total += vector[d] * embedding[d]
    return total


@njit(cache=True)
def _max_at(candidates: I64, rows: I64, values: F32, decay: np.float32, out: F32) -> None:  # pragma: no cover
    """out[i] = max(out[i], decay * values[j]) where candidates[i] == rows[j] (both sorted): `Ranker._intent`'s
    maximum over queries, at the candidates only."""
    j = 0
    for i in range(candidates.shape[0]):
        c = candidates[i]
        while j < rows.shape[0] and rows[j] < c:
            j += 1
        if j == rows.shape[0]:
            return
        if rows[j] == c:
            value = np.float32(decay * values[j])
            if value > out[i]:
                out[i] = value
