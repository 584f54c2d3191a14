"""streamrec's scorer, for one user or many at once: popularity + trending + co-occurrence + embedding + search
intent, watched items excluded, calibrated and capped, explained.

Lists are bit-identical however users are batched: every float operation is the one the per-user formula
does, in the same order (the embedding stays one matrix-vector product per user: a matrix product sums in
another order), and users are taken in order where they change state (the trending window advances to each
user's last event before that user is scored).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

from streamrec.models import ragged
from streamrec.models.base import Reason, Recommendation
from streamrec.models.calibration import pick_lists
from streamrec.models.catalog import Catalog
from streamrec.models.cooccurrence import Cooccurrence
from streamrec.models.explain import Chosen, Explainer
from streamrec.models.item_side import ItemSide
from streamrec.models.params import StreamParams
from streamrec.models.profile import SearchEntry, UserProfile
from streamrec.models.ranking_common import (
    F32,
    F64,
    I64,
    NO_COUNTS,
    RankedUser,
    Rows,
    scatter_strongest,
    watched_hashes,
)
from streamrec.models.search_intent import fresh_searches, query_matches
from streamrec.models.top_k import NO_ROWS

QUERY_CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class RankedLists:
    """The lists of one ranking call, per position (all lists, list after list): item ids, rounded scores and
    the reasons chosen; as `Recommendation`s, or as the items of a published list without objects per item."""

    item_ids: list[str]
    scores: list[float]
    bounds: list[int]  # list k holds positions bounds[k] to bounds[k + 1]
    chosen: Chosen | None  # None: no list has items
    explainer: Explainer

    def __len__(self) -> int:
        return len(self.bounds) - 1

    def recommendations(self) -> list[list[Recommendation]]:
        reasons = self.explainer.reasons(self.chosen, Reason) if self.chosen is not None else []
        ids, scores, bounds = self.item_ids, self.scores, self.bounds
        return [
            [
                Recommendation(ids[pos], pos - bounds[k] + 1, scores[pos], tuple(reasons[pos]))
                for pos in range(bounds[k], bounds[k + 1])
            ]
            for k in range(len(bounds) - 1)
        ]

    def json_items(self) -> list[list[dict[str, Any]]]:
        """Each list's items as published (`base.recommendation_json` of `recommendations()`, built directly)."""
        reasons = self.explainer.reasons(self.chosen, dict) if self.chosen is not None else []
        ids, scores, bounds = self.item_ids, self.scores, self.bounds
        return [
            [
                {"item_id": ids[pos], "rank": pos - bounds[k] + 1, "score": scores[pos], "reasons": reasons[pos]}
                for pos in range(bounds[k], bounds[k + 1])
            ]
            for k in range(len(bounds) - 1)
        ]


class Ranker:
    """Ranks the items of an `ItemSide` for viewers' profiles, keeping what does not depend on the viewer between
    calls. Moves the item side's trending window on to each viewer's time as it ranks."""

    def __init__(self, items: ItemSide, params: StreamParams) -> None:
        self.items = items
        self.params = params
        self.explainer = Explainer(items.catalog, params.trending_window_days)
        self._base_key = (-1, -1, -1, -1, -1)
        self._blend_version = -1
        self._recent = np.zeros(0)
        self._base = np.zeros(0, dtype=np.float32)
        self._base_trending = np.zeros(0, dtype=np.int64)
        self._popularity = np.zeros(0)
        self._log_popularity = np.zeros(0)
        self._tops = np.zeros(2)  # the maxima of log popularity and of the recency values
        self._log1p = np.log1p(np.arange(1024, dtype=np.float64))  # log1p of the whole counts, by count
        self._recency: dict[int, F32] = {}
        self._catalog_version = -1
        self._queries: dict[str, tuple[dict[int, float], Rows, F32]] = {}
        self._n_creators = 1

    def prepare(self, vectors: F32) -> None:
        """Build what ranking needs for `vectors` (`ItemSide.vectors`) before the first list (nothing here: every
        item is scored)."""

    @property
    def index_builds(self) -> int:
        """Times an item index was built (none here: every item is scored)."""
        return 0

    def rank_many(self, profiles: Sequence[UserProfile | None], n: int) -> list[list[Recommendation]]:
        return self.rank_lists(profiles, n).recommendations()

    def rank_lists(self, profiles: Sequence[UserProfile | None], n: int) -> RankedLists:
        """`rank_many`'s lists, compact: published as they are (`json_items`) they need no objects per item."""
        p = self.params
        n_items = len(self.items.catalog)
        if n_items == 0 or not profiles:
            return self._explained([_NO_ROWS] * len(profiles), [_NO_SCORES] * len(profiles), [], _NO_NEIGHBOURS)
        self._sync_catalog()
        scores = np.empty((len(profiles), n_items), dtype=np.float32)
        users = [self._prepare(profile, scores, u) for u, profile in enumerate(profiles)]
        self._add_history_scores(scores, users)
        for u, user in enumerate(users):
            if user.profile is not None and user.profile.searches:
                intent, user.per_query = self._intent(user.profile.searches, user.now, n_items)
                scores[u] += p.w_search * intent
        self._exclude_watched(scores, users)
        if self.items.catalog.removed:
            scores[:, ~self.items.catalog.live_rows()] = -np.inf

        flat = scores.reshape(-1)
        starts = np.arange(0, flat.shape[0] + 1, n_items, dtype=np.int64)
        columns, offsets = self._pick(flat, starts, min(p.candidates, n_items), users, n)
        bounds = offsets.tolist()
        chosen = [columns[bounds[u] : bounds[u + 1]] for u in range(len(users))]
        chosen_scores = flat[columns + np.repeat(starts[:-1], np.diff(offsets))]
        neighbours = self._neighbours(users, chosen)
        return self._explained(
            chosen, [chosen_scores[bounds[u] : bounds[u + 1]] for u in range(len(users))], users, neighbours
        )

    def _pick(
        self,
        scores: F32,
        starts: npt.NDArray[np.int64],
        pool: int,
        users: list[RankedUser],
        n: int,
        rows: I64 = NO_ROWS,
    ) -> tuple[I64, I64]:
        """Each user's list (`calibration.pick_lists`: the best `pool` by relevance, ties by row, calibrated and
        capped) as positions into their slice of `scores`, and the lists' offsets."""
        p = self.params
        catalog = self.items.catalog
        return pick_lists(
            scores,
            starts,
            pool,
            [_genre_target(user.profile, catalog) if user.profile is not None else None for user in users],
            n,
            p.calibration_weight,
            p.caps,
            catalog.genre_idx,
            catalog.genre_share,
            catalog.creator_idx,
            len(catalog.genres),
            self._n_creators,
            rows,
        )

    def _sync_catalog(self) -> None:
        catalog = self.items.catalog
        if self._catalog_version != catalog.version:
            self._queries.clear()
            self._n_creators = max(int(catalog.creator_idx.max(initial=-1)) + 1, 1)
            self._catalog_version = catalog.version

    # -- per-user state, in order -------------------------------------------------------------------------
    def _prepare(self, profile: UserProfile | None, scores: F32, u: int) -> RankedUser:
        now = profile.last_ts if profile is not None else self.items.trending.now
        as_of = self.items.advance_trending(now)
        scores[u] = self._popularity_trending(scores.shape[1])
        rows, weights = self.recent_history(profile)
        return RankedUser(profile, now, as_of, self._base_trending, rows, weights, [])

    def recent_history(self, profile: UserProfile | None) -> tuple[Rows | None, F32]:
        """The rows of the recent history entries the catalog knows, and their weights (recency × liking)."""
        if profile is None or not profile.history:
            return None, _NO_WEIGHTS
        row_of = self.items.catalog.row_of
        removed = self.items.catalog.removed  # a removed item is no evidence: no score, no reason names it
        rows: list[int] = []
        likes: list[float] = []
        for h in profile.history[-self.params.scoring_window :]:
            row = row_of.get(h.item_id)
            if row is not None and not (removed and row in removed):
                rows.append(row)
                likes.append(max(0.25, 1.0 + h.weight))
        return np.array(rows, dtype=np.intp), self._recency_weights(len(rows)) * np.array(likes, dtype=np.float32)

    def _popularity_trending(self, n_items: int) -> F32:
        """The user-independent part of every score: popularity and recency (views decayed with time), each scaled
        to a maximum of 1, blended by the learnt weights. Between calls few values change (an event adds a view),
        so only their entries are recomputed unless a maximum or a weight moved; elementwise, so the values are
        those of the full formula. Also keeps the trending window's counts the reasons quote."""
        cooccurrence, recency, blend = self.items.cooccurrence, self.items.recency, self.items.blend
        trending_counter = self.items.trending
        key = (cooccurrence.version, recency.version, blend.version, trending_counter.version, n_items)
        if key == self._base_key:
            return self._base
        if trending_counter.version != self._base_key[3] or n_items != self._base_key[4]:
            # a new array: earlier users of a batch keep theirs
            self._base_trending = trending_counter.counts[:n_items].copy()
        if key[:3] == self._base_key[:3] and n_items == self._base_key[4]:
            self._base_key = key
            return self._base
        popularity = cooccurrence.item_counts[:n_items]
        recent = recency.values[:n_items]
        full = self._base_key[4] != n_items
        if full:
            self._popularity = np.full(n_items, np.nan)  # nothing seen: every entry is computed
            self._log_popularity = np.zeros(n_items)
            self._recent = np.full(n_items, np.nan)
            self._base = np.empty(n_items, dtype=np.float32)
        _, _, w_popularity, w_recency = blend.weights
        weights = (w_popularity, w_recency, blend.version != self._blend_version)
        refresh = (self._popularity, self._log_popularity, recent, self._recent, self._tops)
        if not _refresh_base(popularity, *refresh, self._log1p, *weights, full, True, self._base):
            # A count the table lacks: grow the table if that is all, else (rarely) numpy's log1p of the
            # changed counts and a full refresh. Always numpy's log1p: a compiled one may differ in the last bit.
            top = float(np.max(popularity))
            if top == np.floor(top) and self._log1p.shape[0] <= top < 1 << 24:
                self._log1p = np.log1p(np.arange(max(2 * self._log1p.shape[0], int(top) + 1), dtype=np.float64))
            if not _refresh_base(popularity, *refresh, self._log1p, *weights, full, True, self._base):
                changed = np.flatnonzero(popularity != self._popularity)
                self._log_popularity[changed] = np.log1p(popularity[changed])
                self._popularity[changed] = popularity[changed]
                _refresh_base(popularity, *refresh, self._log1p, *weights[:2], True, True, False, self._base)
        self._blend_version = blend.version
        self._base_key = key
        return self._base

    def _recency_weights(self, length: int) -> F32:
        """decay**age of the most recent `length` history entries, oldest first (computed once per length)."""
        decay = self._recency.get(length)
        if decay is None:
            ages = np.arange(length)[::-1]
            decay = self._recency[length] = (self.params.recency_decay**ages).astype(np.float32)
        return decay

    # -- scoring ------------------------------------------------------------------------------------------
    def _add_history_scores(self, scores: F32, users: list[RankedUser]) -> None:
        """Co-occurrence with the recent history (one compiled pass for all users), then the embedding."""
        with_history = [u for u, user in enumerate(users) if user.history_rows is not None]
        if not with_history:
            return
        history, offsets = ragged.join(
            [rows for u in with_history if (rows := users[u].history_rows) is not None], _NO_ROWS
        )
        cooccurrence = self.items.cooccurrence
        assert isinstance(cooccurrence, Cooccurrence)  # large catalogs rank with `CandidateRanker`
        cooccurrence.add_similarity(
            history,
            ragged.flatten([users[u].history_weights for u in with_history], _NO_WEIGHTS),
            offsets,
            np.array(with_history, dtype=np.intp),
            self.items.blend.weights[0],
            scores,
        )
        # One matrix-vector product per user (a matrix product would sum in another order), scaled together.
        vectors = self.items.vectors
        embedded: list[int] = []
        products: list[F32] = []
        norms: list[float] = []
        for u in with_history:
            profile = users[u].profile
            assert profile is not None
            norm = float(np.sqrt(profile.embedding.dot(profile.embedding)))  # np.linalg.norm of a 1-D array
            if norm > 0 and profile.embedding.shape[0] == vectors.shape[1]:
                embedded.append(u)
                products.append(vectors @ profile.embedding)
                norms.append(norm)
        w_embedding = self.items.blend.weights[1]
        if len(embedded) == 1:
            scores[embedded[0]] += w_embedding * products[0] / norms[0]
        elif embedded:
            scaled = w_embedding * np.stack(products) / np.array(norms, dtype=np.float32)[:, None]
            scores[embedded] += scaled  # the norms are float32 values: dividing by them is dividing by each

    def _intent(
        self, searches: Sequence[SearchEntry], now: int, n_items: int
    ) -> tuple[F32, list[tuple[str, dict[int, float]]]]:
        """`search_intent.intent_scores`, with each query's matches kept while the catalog is unchanged."""
        intent = np.zeros(n_items, dtype=np.float32)
        per_query: list[tuple[str, dict[int, float]]] = []
        for search, decay in fresh_searches(searches, now, self.params.search_half_life_ms):
            matches, rows, values = self._query(search.query)
            if matches:
                intent[rows] = np.maximum(intent[rows], decay * values)  # rows are distinct: as maximum.at
                per_query.append((search.query, matches))
        return intent, per_query

    def _query(self, query: str) -> tuple[dict[int, float], Rows, F32]:
        cached = self._queries.get(query)
        if cached is None:
            if len(self._queries) >= QUERY_CACHE_SIZE:
                self._queries.clear()
            matches = query_matches(self.items.catalog, query)
            rows = np.fromiter(matches.keys(), dtype=np.intp, count=len(matches))
            values = np.fromiter(matches.values(), dtype=np.float32, count=len(matches))
            order = np.argsort(rows)  # by row: `CandidateRanker` merges them with its sorted candidates
            cached = self._queries[query] = (matches, rows[order], values[order])
        return cached

    def _exclude_watched(self, scores: F32, users: list[RankedUser]) -> None:
        keys, key_rows = self.items.catalog.hash_index()
        hashes, offsets = watched_hashes(users)
        if hashes.shape[0]:
            _exclude(keys, key_rows, hashes, offsets, np.arange(len(users), dtype=np.int64), scores)

    # -- explaining ---------------------------------------------------------------------------------------
    def _neighbours(self, users: list[RankedUser], chosen: list[Rows]) -> tuple[I64, F64]:
        """Per chosen item (all lists, list after list): the watched row contributing most to its co-occurrence
        score (-1 if none does), and that contribution's share of the item's co-occurrence score."""
        cooc = self.items.cooccurrence
        sizes = [c.shape[0] for c in chosen]
        neighbours = np.full(sum(sizes), -1, dtype=np.int64)
        shares = np.zeros(neighbours.shape[0], dtype=np.float64)
        with_history = [user.history_rows is not None and user.history_rows.size > 0 for user in users]
        start = 0
        for u, user in enumerate(users):  # numpy sums a single column pairwise: do exactly that
            if with_history[u] and sizes[u] == 1 and user.history_rows is not None:
                column = self._contributions(user.history_rows, user.history_weights, chosen[u])
                arg = np.argmax(column, axis=0)
                high = column[arg, np.arange(1)]
                if high[0] > 0:
                    share = high / np.maximum(column.sum(axis=0), 1e-9)
                    neighbours[start] = int(user.history_rows[arg[0]])
                    shares[start] = float(share[0])
            start += sizes[u]
        batched = [u for u in range(len(users)) if with_history[u] and sizes[u] > 1]
        if not batched:
            return neighbours, shares
        history, history_offsets = ragged.join(
            [rows for u in batched if (rows := users[u].history_rows) is not None], _NO_ROWS
        )
        columns, column_offsets = ragged.join([chosen[u] for u in batched], _NO_ROWS)
        best = np.empty(columns.shape[0], dtype=np.intp)
        top = np.empty(columns.shape[0], dtype=np.float32)
        ratio = np.empty(columns.shape[0], dtype=np.float32)
        _strongest(
            cooc.counts,
            cooc.item_counts,
            history,
            ragged.flatten([users[u].history_weights for u in batched], _NO_WEIGHTS),
            history_offsets,
            columns,
            column_offsets,
            best,
            top,
            ratio,
        )
        scatter_strongest(neighbours, shares, batched, sizes, best, top, ratio)
        return neighbours, shares

    def _explained(
        self, chosen: list[Rows], scores: list[F32], users: list[RankedUser], neighbours: tuple[I64, F64]
    ) -> RankedLists:
        """The lists, explained from the evidence gathered for all of them at once."""
        flat, offsets = ragged.join(chosen, _NO_ROWS)
        rows = flat.astype(np.int64, copy=False)
        ids = self.items.catalog.items
        item_ids = [ids[row].item_id for row in rows.tolist()]
        rounded = round_exactly(np.concatenate(scores).astype(np.float64) if scores else _NO_VALUES, 6)
        if not users:
            return RankedLists(item_ids, rounded, offsets.tolist(), None, self.explainer)
        queries: dict[int, tuple[str, float]] = {}
        for u, user in enumerate(users):
            if user.per_query:
                for pos, row in enumerate(chosen[u].tolist(), int(offsets[u])):
                    for q, matches in reversed(user.per_query):  # the most recent matching query
                        share = matches.get(row)
                        if share is not None:
                            queries[pos] = (q, share)
                            break
        hashes, hash_offsets = watched_hashes(users)
        reasons = self.explainer.choose(
            rows,
            offsets,
            neighbours[0],
            neighbours[1],
            queries,
            hashes,
            hash_offsets,
            [user.profile.genre_weights if user.profile is not None else None for user in users],
            np.concatenate([user.trending[c] for user, c in zip(users, chosen, strict=True)]),
            self.items.cooccurrence.item_counts,
            [user.as_of for user in users],
            self.items.position,
        )
        return RankedLists(item_ids, rounded, reasons.bounds, reasons, self.explainer)

    def _contributions(self, rows: Rows, weights: F32, columns: Rows) -> F32:
        """`Cooccurrence.similar_to(rows, weights)[:, columns]`, computed for those columns only."""
        cooc = self.items.cooccurrence
        counts = cooc.counts[rows[:, None], columns]
        item_counts = cooc.item_counts
        norm = np.sqrt(item_counts[rows][:, None] * item_counts[columns]).astype(np.float32)
        np.maximum(norm, 1.0, out=norm)
        result: F32 = weights[:, None] * (counts / norm)
        return result


_NO_WEIGHTS = np.zeros(0, dtype=np.float32)


_NO_ROWS = np.zeros(0, dtype=np.intp)
_NO_NEIGHBOURS = (NO_COUNTS, np.zeros(0, dtype=np.float64))
_NO_SCORES = np.zeros(0, dtype=np.float32)
_NO_VALUES = np.zeros(0, dtype=np.float64)


def round_exactly(values: npt.NDArray[np.float64], digits: int) -> list[float]:
    """`[round(x, digits) for x in values.tolist()]`, bit for bit, vectorized (Python's `round` per score is a
    noticeable share of a list's time). Python rounds the exact binary value half-even to `digits` decimals, then
    takes the nearest double.
    Here: rint of the scaled value; where it is surely not near a half, it is the exact value's rounding, and
    dividing that integer by the exact power of ten is the nearest double. The rest (near a half, huge, not
    finite) goes through Python's `round`."""
    scale = 10.0**digits
    scaled = values * scale  # within 2**-13 of the exact product while below 2**40
    nearest = np.rint(scaled)
    sure = (np.abs(scaled - nearest) < 0.5 - 2.0**-12) & (np.abs(scaled) < 2.0**40)
    rounded: list[float] = (nearest / scale).tolist()
    if not sure.all():
        for i in np.flatnonzero(~sure).tolist():
            rounded[i] = round(float(values[i]), digits)
    return rounded


@njit(cache=True)
def _refresh_base(
    popularity: npt.NDArray[np.float64],
    seen_popularity: npt.NDArray[np.float64],
    log_popularity: npt.NDArray[np.float64],
    recent: npt.NDArray[np.float64],
    seen_recent: npt.NDArray[np.float64],
    tops: npt.NDArray[np.float64],
    log1p: npt.NDArray[np.float64],
    w_popularity: float,
    w_recency: float,
    reweighted: bool,
    full: bool,
    lookup: bool,
    base: F32,
) -> bool:  # pragma: no cover - compiled
    """base = w_p * unit(log1p(popularity)) + w_r * unit(recent), with numpy's float32 rounding (unit: x / max(x)
    when positive, else 0), recomputed only where a value differs from the one seen last, unless a maximum
    (`tops` holds the last ones) or the weights (`reweighted`) moved, or `full`. With `lookup`, a changed count's
    log1p comes from the table `log1p` (numpy's, by whole count): False, and nothing changed, if one is not in
    it; without, `log_popularity` is taken as up to date."""
    n = base.shape[0]
    changed = np.zeros(n, dtype=np.bool_)
    if lookup:
        for j in range(n):
            count = popularity[j]
            if count != seen_popularity[j]:
                whole = count == np.floor(count) and count < log1p.shape[0]
                if not (whole and (count > 0 or (count == 0 and math.copysign(1.0, count) > 0))):
                    return False
        for j in range(n):
            if popularity[j] != seen_popularity[j]:
                log_popularity[j] = log1p[int(popularity[j])]
                seen_popularity[j] = popularity[j]
                changed[j] = True
    for j in range(n):
        if full or recent[j] != seen_recent[j]:
            seen_recent[j] = recent[j]
            changed[j] = True
    top_p = log_popularity[0]
    top_r = recent[0]
    for j in range(n):
        if log_popularity[j] > top_p or np.isnan(log_popularity[j]):
            top_p = log_popularity[j]
        if recent[j] > top_r:
            top_r = recent[j]
    if top_p != tops[0] or top_r != tops[1] or reweighted:
        changed[:] = True
    tops[0] = top_p
    tops[1] = top_r
    wp = np.float32(w_popularity)
    wr = np.float32(w_recency)
    zero = np.float32(0.0)
    for j in range(n):
        if changed[j]:
            unit_p = np.float32(log_popularity[j] / top_p) if top_p > 0 else zero
            unit_r = np.float32(recent[j] / top_r) if top_r > 0 else zero
            base[j] = np.float32(np.float32(wp * unit_p) + np.float32(wr * unit_r))
    return True


@njit(cache=True)
def _exclude(
    keys: npt.NDArray[np.int64],
    key_rows: Rows,
    hashes: npt.NDArray[np.int64],
    offsets: npt.NDArray[np.int64],
    targets: npt.NDArray[np.int64],
    scores: F32,
) -> None:  # pragma: no cover - compiled
    """scores[targets[k], row_of_hash[h]] = -inf for each h of slice k that the catalog knows (keys: sorted)."""
    for k in range(targets.shape[0]):
        row = scores[targets[k]]
        for h in hashes[offsets[k] : offsets[k + 1]]:
            pos = np.searchsorted(keys, h, side="right") - 1
            if pos >= 0 and keys[pos] == h:
                row[key_rows[pos]] = -np.inf


@njit(cache=True)
def _strongest(
    counts: F32,
    item_counts: npt.NDArray[np.float64],
    rows: Rows,
    weights: F32,
    row_offsets: npt.NDArray[np.int64],
    chosen: Rows,
    chosen_offsets: npt.NDArray[np.int64],
    best: Rows,
    top: F32,
    ratio: F32,
) -> None:  # pragma: no cover - compiled
    """For each slice k, per chosen column j of `similar_to(rows, weights)` (rows and weights of slice k):
    numpy's argmax over the history (the first maximum; a NaN wins) as a history row, that value, and
    value / max(column sum, 1e-9), the column summed in order as numpy sums axis 0 of a matrix with more than
    one column."""
    one = np.float32(1.0)
    floor = np.float32(1e-9)
    for k in range(row_offsets.shape[0] - 1):
        for pos in range(chosen_offsets[k], chosen_offsets[k + 1]):
            j = chosen[pos]
            arg = row_offsets[k]
            high = np.float32(0.0)
            total = np.float32(0.0)
            for i in range(row_offsets[k], row_offsets[k + 1]):
                r = rows[i]
                norm = max(np.float32(np.sqrt(item_counts[r] * item_counts[j])), one)
                value = np.float32(weights[i] * np.float32(counts[r, j] / norm))
                if i == row_offsets[k]:
                    high = value
                    total = value
                else:
                    if not np.isnan(high) and (np.isnan(value) or value > high):
                        arg = i
                        high = value
                    total = np.float32(total + value)
            best[pos] = rows[arg]
            top[pos] = high
            ratio[pos] = np.float32(high / (floor if total < floor else total))


def _genre_target(profile: UserProfile, catalog: Catalog) -> npt.NDArray[np.float64] | None:
    """The user's genre mix p over the catalog's genre columns (None: no genre weight yet)."""
    total = sum(profile.genre_weights.values())
    if total <= 0:
        return None
    by_col: dict[int, float] = {}  # names with the same genre key: the last one counts
    for name, weight in profile.genre_weights.items():
        col = catalog.genre_col_of(name)
        if col is not None:
            by_col[col] = weight
    target = np.zeros(len(catalog.genres), dtype=np.float64)
    target[list(by_col)] = list(by_col.values())
    mass = float(target.sum())
    return target / mass if mass > 0 else None
