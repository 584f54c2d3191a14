"""Reasons a person can read and we can prove: each names the evidence (an item watched, a query made, a count).

Reasons are chosen from what actually drove the score, strongest first; a reason is only offered when its
evidence holds, so every item gets at least one true reason (an item's view count is always true).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np
import numpy.typing as npt
from numba import njit

from streamrec.models.base import Reason, reason_json
from streamrec.models.catalog import Catalog
from streamrec.models.events import DAY_MS

NEW_WINDOW_MS = 14 * DAY_MS  # "new in the catalog" means added within the last fortnight


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the scorer knows about one candidate when the list is explained."""

    row: int
    neighbour_row: int | None  # the watched item contributing most to the co-occurrence/embedding score
    neighbour_share: float  # that contribution's share of the item's score
    query: str | None  # the recent query that matches this item, if any
    query_share: float
    shared_creator: tuple[str, int] | None  # (creator, watched row) the item shares with the history
    liked_genre: str | None  # the item's genre the user watches most, if any
    trending_count: int
    trending_window_days: int
    total_count: int
    as_of: int  # event time the counts refer to


def explain(catalog: Catalog, ev: Evidence, max_reasons: int = 2) -> tuple[Reason, ...]:
    ranked: list[tuple[float, Reason]] = []
    if ev.query is not None:
        ranked.append(
            (ev.query_share + 1.0, Reason("search", f"Matches your search '{ev.query}'", {"query": ev.query}))
        )
    if ev.neighbour_row is not None:
        title = catalog.title(ev.neighbour_row)
        item_id = catalog.items[ev.neighbour_row].item_id
        ranked.append(
            (
                ev.neighbour_share,
                Reason("watched", f"Because you watched {title}", {"item_id": item_id, "title": title}),
            )
        )
    if ev.shared_creator is not None:
        creator, row = ev.shared_creator
        title = catalog.title(row)
        ranked.append(
            (
                0.3,
                Reason(
                    "creator",
                    f"From a creator of {title}, which you watched",
                    {"item_id": catalog.items[row].item_id, "title": title, "creator": creator},
                ),
            )
        )
    if ev.liked_genre is not None:
        ranked.append((0.2, Reason("genre", f"{ev.liked_genre}, a genre you watch often", {"genre": ev.liked_genre})))
    if ev.trending_count > 0:
        days = ev.trending_window_days
        ranked.append(
            (
                0.1,
                Reason(
                    "trending",
                    f"Trending: {ev.trending_count} views in the last {days} days",
                    {"count": str(ev.trending_count), "window_days": str(days), "as_of": str(ev.as_of)},
                ),
            )
        )
    added = catalog.added_ts[ev.row]
    if added > 0 and 0 <= ev.as_of - added <= NEW_WINDOW_MS:
        days = max(1, -(-(ev.as_of - added) // DAY_MS))
        ranked.append((0.15, Reason("new", "New in the catalog this fortnight", {"days": str(days)})))
    ranked.sort(key=lambda pair: -pair[0])
    reasons = [reason for _, reason in ranked[:max_reasons]]
    if not reasons:
        reasons.append(
            Reason(
                "popular",
                f"{ev.total_count} views so far" if ev.total_count != 1 else "1 view so far",
                {"count": str(ev.total_count), "as_of": str(ev.as_of)},
            )
        )
    return tuple(reasons)


class Explainer:
    """`explain` for whole lists, with the same reasons in the same order, but cheaper: which reasons each item
    gets is decided by one compiled pass over every list of a call (`_choose`), and reasons whose wording
    depends only on the catalog are built once and shared (they are immutable) until the catalog changes.
    """

    def __init__(self, catalog: Catalog, trending_window_days: int, max_reasons: int = 2) -> None:
        self.catalog = catalog
        self.window_days = trending_window_days
        self.max_reasons = max_reasons
        self._version = -1
        self._shared: dict[int, Reason] = {}  # code -> reason, for the kinds worded from the catalog alone
        self._shared_json: dict[int, dict[str, str]] = {}  # the same, as published
        self._genre_of_name: dict[str, int] = {}  # display name -> genre column
        self._name_rank = np.zeros(0, dtype=np.int64)  # genre column -> rank of its name (explain's tie-break)
        self._added = np.zeros(0, dtype=np.int64)
        self._creator_names: list[str] = []

    def explain_list(
        self,
        rows: list[int],
        neighbours: list[int | None],
        neighbour_shares: list[float],
        queries: list[tuple[str, float] | None],
        watched: set[int] | None,
        genre_weights: dict[str, float] | None,
        trending_counts: list[int],
        total_counts: npt.NDArray[np.float64],
        as_of: int,
    ) -> list[tuple[Reason, ...]]:
        """Reasons for each row of a list; `watched`/`genre_weights` are the profile's (None: no profile).

        Per position: `neighbours`/`neighbour_shares` and `queries` ((query, share) or None) are the
        Evidence fields of the same names, `trending_counts` the trending window's counts; `total_counts`
        holds every row's all-time count."""
        hashes = np.fromiter(watched, dtype=np.int64, count=len(watched)) if watched else _NO_HASHES
        chosen = self.choose(
            np.asarray(rows, dtype=np.int64),
            np.array([0, len(rows)], dtype=np.int64),
            np.array([-1 if n is None else n for n in neighbours], dtype=np.int64),
            np.asarray(neighbour_shares, dtype=np.float64),
            {pos: query for pos, query in enumerate(queries) if query is not None},
            hashes,
            np.array([0, hashes.shape[0]], dtype=np.int64),
            [genre_weights if genre_weights is not None else ({} if watched is not None else None)],
            np.asarray(trending_counts, dtype=np.int64),
            total_counts,
            [as_of],
        )
        return [tuple(reasons) for reasons in self.reasons(chosen, Reason)]

    def choose(
        self,
        rows: I64,
        offsets: I64,
        neighbours: I64,
        neighbour_shares: npt.NDArray[np.float64],
        queries: dict[int, tuple[str, float]],
        watched: I64,
        watched_offsets: I64,
        genre_weights: Sequence[dict[str, float] | None],
        trending_counts: I64,
        total_counts: npt.NDArray[np.float64],
        as_of: Sequence[int],
        state: int | None = None,
    ) -> Chosen:
        """Which reasons each item of several lists gets (list k is `rows[offsets[k]:offsets[k + 1]]`); `reasons`
        words them.

        Per position: `neighbours` (-1: none) and `neighbour_shares`, `queries` (position -> (query, share),
        where one matches), `trending_counts`. Per list: its profile's watched hashes
        (`watched[watched_offsets[k]:watched_offsets[k + 1]]`) and genre weights (None: no profile), `as_of`."""
        catalog = self.catalog
        self._sync()
        n_lists = offsets.shape[0] - 1
        query_ids = np.full(rows.shape[0], -1, dtype=np.int64)
        query_shares = np.zeros(rows.shape[0], dtype=np.float64)
        names: dict[str, int] = {}
        for pos, (query, share) in queries.items():
            query_ids[pos] = names.setdefault(query, len(names))
            query_shares[pos] = share
        profiled = np.array([weights is not None for weights in genre_weights], dtype=np.bool_)
        liked = np.zeros((n_lists, len(catalog.genres)), dtype=np.float64)  # weights >= 1 by column, else 0
        genre_of_name = self._genre_of_name
        for k, weights in enumerate(genre_weights):
            if weights:
                for name, weight in weights.items():
                    col = genre_of_name.get(name)
                    if col is not None and weight >= 1.0:
                        liked[k, col] = weight
        keys, key_rows = catalog.hash_index()
        codes = np.zeros((rows.shape[0], self.max_reasons), dtype=np.int64)
        _choose(
            rows,
            offsets,
            neighbours,
            neighbour_shares,
            query_ids,
            query_shares,
            profiled,
            watched,
            watched_offsets,
            keys,
            key_rows,
            catalog.creator_idx,
            len(self._creator_names),
            liked,
            self._name_rank,
            catalog.genre_idx,
            trending_counts,
            self._added,
            np.asarray(as_of, dtype=np.int64),
            total_counts,
            codes,
        )
        return Chosen(codes.tolist(), offsets.tolist(), list(names), list(as_of), self._version, state)

    def _sync(self) -> None:
        catalog = self.catalog
        if self._version != catalog.version:
            self._shared.clear()
            self._shared_json.clear()
            genres = catalog.genres
            self._genre_of_name = {name: col for col, name in enumerate(genres)}
            ranks = np.empty(len(genres), dtype=np.int64)
            ranks[sorted(range(len(genres)), key=genres.__getitem__)] = np.arange(len(genres))
            self._name_rank = ranks
            self._added = np.asarray(catalog.added_ts, dtype=np.int64)
            self._creator_names = list(catalog.creator_ids)  # ids are given in insertion order
            self._version = catalog.version

    @overload
    def reasons(self, chosen: Chosen, form: type[Reason]) -> list[list[Reason]]: ...
    @overload
    def reasons(self, chosen: Chosen, form: type[dict[str, str]]) -> list[list[dict[str, str]]]: ...
    def reasons(self, chosen: Chosen, form: type[Reason] | type[dict[str, str]]) -> list[list[Any]]:
        """Every position's reasons, best first, as `Reason`s or as they are published (`form` dict:
        `base.reason_json`); the same objects are shared by the positions they explain."""
        if chosen.catalog_version != self.catalog.version:
            raise ValueError("the catalog changed since these reasons were chosen")
        shared: dict[int, Any] = self._shared if form is Reason else self._shared_json
        out: list[list[Any]] = []
        codes, bounds = chosen.codes, chosen.bounds
        # Wording that quotes a list's time or the call's queries, shared by the lists of one time: a batch's lists
        # mostly are (the trending window's time is the latest event's). Measured: ~7% of a list at MovieLens.
        by_time: dict[int, dict[int, Any]] = {}
        for k in range(len(bounds) - 1):
            local = by_time.setdefault(chosen.as_of[k], {})
            for pos in range(bounds[k], bounds[k + 1]):
                reasons = []
                for code in codes[pos]:
                    if not code:
                        break
                    cache = shared if code < _LOCAL_CODES else local
                    reason = cache.get(code)
                    if reason is None:
                        worded = self._reason(code, chosen.queries, chosen.as_of[k], chosen.state)
                        reason = cache[code] = worded if form is Reason else reason_json(worded)
                    reasons.append(reason)
                out.append(reasons)
        return out

    def _reason(self, code: int, queries: list[str], as_of: int, state: int | None) -> Reason:
        catalog = self.catalog
        kind, a = code >> _KIND_SHIFT, code & _ARG_MASK
        if kind == _CREATOR:
            creator, row = a >> _ROW_BITS, a & _ROW_MASK
            title = catalog.title(row)
            evidence = {"item_id": catalog.items[row].item_id, "title": title, "creator": self._creator_names[creator]}
            return Reason("creator", f"From a creator of {title}, which you watched", evidence)
        if kind == _WATCHED:
            title = catalog.title(a)
            return Reason(
                "watched", f"Because you watched {title}", {"item_id": catalog.items[a].item_id, "title": title}
            )
        if kind == _GENRE:
            genre = catalog.genres[a]
            return Reason("genre", f"{genre}, a genre you watch often", {"genre": genre})
        if kind == _NEW:
            return Reason("new", "New in the catalog this fortnight", {"days": str(a)})
        if kind == _SEARCH:
            query = queries[a]
            return Reason("search", f"Matches your search '{query}'", {"query": query})
        counted = {"as_of": str(as_of)} if state is None else {"as_of": str(as_of), "state": str(state)}
        if kind == _TRENDING:
            days = self.window_days
            return Reason(
                "trending",
                f"Trending: {a} views in the last {days} days",
                {"count": str(a), "window_days": str(days), **counted},
            )
        return Reason("popular", f"{a} views so far" if a != 1 else "1 view so far", {"count": str(a), **counted})


@dataclass(frozen=True, slots=True)
class Chosen:
    """The reasons `Explainer.choose` picked, as codes (kind and arguments in one int; 0: none), per position."""

    codes: list[list[int]]  # per position (all lists, list after list), best first
    bounds: list[int]  # list k holds positions bounds[k] to bounds[k + 1]
    queries: list[str]  # the queries search reasons name, by id
    as_of: list[int]  # per list: the time its counts refer to
    catalog_version: int
    state: int | None = None  # the item state's position in the item-signal log its counts come from, if any


# A reason's code: its kind in the top bits, then its argument; a creator reason's argument is the creator's id and
# the watched row (below 2**28 rows). Kinds from `_SEARCH` on quote a list's own time or queries.
_WATCHED, _CREATOR, _GENRE, _NEW, _SEARCH, _TRENDING, _POPULAR = 1, 2, 3, 4, 5, 6, 7
_KIND_SHIFT, _ROW_BITS = 59, 28
_ARG_MASK, _ROW_MASK = (1 << _KIND_SHIFT) - 1, (1 << _ROW_BITS) - 1
_LOCAL_CODES = _SEARCH << _KIND_SHIFT
_NO_HASHES = np.zeros(0, dtype=np.int64)
I64 = npt.NDArray[np.int64]


@njit(cache=True)
def _choose(
    rows: I64,
    offsets: I64,
    neighbours: I64,
    neighbour_shares: npt.NDArray[np.float64],
    query_ids: I64,
    query_shares: npt.NDArray[np.float64],
    profiled: npt.NDArray[np.bool_],
    watched: I64,
    watched_offsets: I64,
    keys: I64,
    key_rows: npt.NDArray[np.intp],
    creator_idx: I64,
    n_creators: int,
    liked: npt.NDArray[np.float64],
    name_rank: I64,
    genre_idx: I64,
    trending: I64,
    added: I64,
    as_of: I64,
    total_counts: npt.NDArray[np.float64],
    codes: I64,
) -> None:  # pragma: no cover - compiled
    """`explain`'s choice for every position: its candidate reasons in `explain`'s order with their priorities,
    the `max_reasons` best kept as a stable sort would (ties: the earlier), or the popular reason if none holds.
    Writes a code per kept reason: its kind and argument, watched (row), creator (creator id, the first watched
    row of theirs), genre (column), new (days), search (query id), trending (count), popular (count)."""
    max_reasons = codes.shape[1]
    earliest = np.full(max(n_creators, 1), -1, dtype=np.int64)  # creator -> first watched row, per list
    priority = np.empty(6, dtype=np.float64)
    code = np.empty(6, dtype=np.int64)
    used = np.empty(6, dtype=np.bool_)
    for k in range(offsets.shape[0] - 1):
        watched_rows = np.empty(watched_offsets[k + 1] - watched_offsets[k], dtype=np.int64)
        n_watched = 0
        for i in range(watched_offsets[k], watched_offsets[k + 1]):  # the rows `row_of_hash` holds
            pos = np.searchsorted(keys, watched[i], side="right") - 1
            if pos >= 0 and keys[pos] == watched[i]:
                row = key_rows[pos]
                watched_rows[n_watched] = row
                n_watched += 1
                for c in creator_idx[row]:
                    if c < 0:
                        break
                    if earliest[c] < 0 or row < earliest[c]:
                        earliest[c] = row
        for pos in range(offsets[k], offsets[k + 1]):
            row = rows[pos]
            n = 0
            if query_ids[pos] >= 0:
                priority[n], code[n] = query_shares[pos] + 1.0, (_SEARCH << _KIND_SHIFT) | query_ids[pos]
                n += 1
            if neighbours[pos] >= 0:
                priority[n], code[n] = neighbour_shares[pos], (_WATCHED << _KIND_SHIFT) | neighbours[pos]
                n += 1
            if profiled[k]:
                for c in creator_idx[row]:  # the first creator the item shares with something watched
                    if c < 0:
                        break
                    if earliest[c] >= 0:
                        priority[n], code[n] = 0.3, (_CREATOR << _KIND_SHIFT) | (c << _ROW_BITS) | earliest[c]
                        n += 1
                        break
                best = -1
                for col in genre_idx[row]:  # the liked genre with the highest (weight, name)
                    if col < 0:
                        break
                    weight = liked[k, col]
                    if weight >= 1.0 and (
                        best < 0
                        or weight > liked[k, best]
                        or (weight == liked[k, best] and name_rank[col] > name_rank[best])
                    ):
                        best = col
                if best >= 0:
                    priority[n], code[n] = 0.2, (_GENRE << _KIND_SHIFT) | best
                    n += 1
            if trending[pos] > 0:
                priority[n], code[n] = 0.1, (_TRENDING << _KIND_SHIFT) | trending[pos]
                n += 1
            age = as_of[k] - added[row]
            if added[row] > 0 and 0 <= age <= NEW_WINDOW_MS:
                priority[n], code[n] = 0.15, (_NEW << _KIND_SHIFT) | max(1, (age + DAY_MS - 1) // DAY_MS)
                n += 1
            if n == 0:
                codes[pos, 0] = (_POPULAR << _KIND_SHIFT) | np.int64(total_counts[row])
                continue
            used[:n] = False
            for slot in range(min(max_reasons, n)):
                top = -1
                for i in range(n):
                    if not used[i] and (top < 0 or priority[i] > priority[top]):
                        top = i
                used[top] = True
                codes[pos, slot] = code[top]
        for i in range(n_watched):  # leave the scratch clean for the next list
            for c in creator_idx[watched_rows[i]]:
                if c < 0:
                    break
                earliest[c] = -1
