"""Reasons a person can read and we can prove: each names the evidence (an item watched, a query made, a count).

Reasons are chosen from what actually drove the score, strongest first; a reason is only offered when its
evidence holds, so every item gets at least one true reason (an item's view count is always true).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from models.base import Reason
from models.catalog import Catalog

DAY_MS = 86_400_000
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
    """`explain` for whole lists, with the same reasons in the same order, but cheaper: the costly evidence
    (a shared creator, a liked genre) is only looked for while it can still make an item's `max_reasons`, and
    reasons whose wording depends only on the catalog are built once and shared (they are immutable) until the
    catalog changes.
    """

    def __init__(self, catalog: Catalog, trending_window_days: int, max_reasons: int = 2) -> None:
        self.catalog = catalog
        self.window_days = trending_window_days
        self.max_reasons = max_reasons
        self._version = -1
        self._watched: dict[int, Reason] = {}
        self._creator: dict[tuple[str, int], Reason] = {}
        self._genre: dict[str, Reason] = {}
        self._new: dict[int, Reason] = {}

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
        catalog = self.catalog
        if self._version != catalog.version:
            self._watched.clear()
            self._creator.clear()
            self._version = catalog.version
        max_reasons = self.max_reasons
        watched_reasons = self._watched
        searches: dict[str, Reason] = {}
        trending: dict[int, Reason] = {}
        liked: dict[int, tuple[float, str]] | None = None  # genre column -> (weight, name), weights >= 1
        watched_creators: dict[str, int] | None = None
        items = catalog.items
        added_ts = catalog.added_ts
        genre_cols = catalog.item_genre_cols
        out: list[tuple[Reason, ...]] = []
        for row, neighbour, share, query, count in zip(
            rows, neighbours, neighbour_shares, queries, trending_counts, strict=True
        ):
            # (priority, reason) in `explain`'s append order, so a stable sort orders ties alike. A trending
            # reason stays a count until it makes the list: its wording is per list (it quotes the time).
            ranked: list[tuple[float, Reason | int]] = []
            ahead_of_creator = ahead_of_genre = 0
            if query is not None:
                priority = query[1] + 1.0
                reason = searches.get(query[0])
                if reason is None:
                    reason = searches[query[0]] = Reason(
                        "search", f"Matches your search '{query[0]}'", {"query": query[0]}
                    )
                ranked.append((priority, reason))
                ahead_of_creator += priority >= 0.3
                ahead_of_genre += priority >= 0.2
            if neighbour is not None:
                ranked.append((share, watched_reasons.get(neighbour) or self._watched_reason(neighbour)))
                ahead_of_creator += share >= 0.3
                ahead_of_genre += share >= 0.2
            # Creator (0.3) and genre (0.2) cost lookups: skip them when enough reasons already rank ahead.
            # Only the search and watched reasons can: trending (0.1) and new (0.15) rank below both.
            if watched is not None and ahead_of_creator < max_reasons and items[row].creators:
                if watched_creators is None:
                    watched_creators = self._watched_creators(watched)
                for name in items[row].creators:  # the first creator the item shares with something watched
                    first = watched_creators.get(name)
                    if first is not None:
                        creator = (name, first)
                        ranked.append((0.3, self._creator.get(creator) or self._creator_reason(*creator)))
                        ahead_of_genre += 1
                        break
            if genre_weights is not None and ahead_of_genre < max_reasons:
                if liked is None:
                    liked = self._liked_genres(genre_weights)
                if liked:
                    # explain's max over the item's (weight, name), kept when the weight is >= 1
                    best: tuple[float, str] | None = None
                    for col in genre_cols[row]:
                        weighed = liked.get(col)
                        if weighed is not None and (best is None or weighed > best):
                            best = weighed
                    if best is not None:
                        ranked.append((0.2, self._genre.get(best[1]) or self._genre_reason(best[1])))
            if count > 0:
                ranked.append((0.1, count))
            added = added_ts[row]
            if added > 0 and 0 <= as_of - added <= NEW_WINDOW_MS:
                ranked.append((0.15, self._new_reason(max(1, -(-(as_of - added) // DAY_MS)))))
            if not ranked:
                out.append((self._popular(int(total_counts[row]), as_of),))
                continue
            if len(ranked) > 1:
                ranked.sort(key=_priority, reverse=True)  # stable: ties keep their order
            reasons: list[Reason] = []
            for _, entry in ranked[:max_reasons]:
                if isinstance(entry, int):
                    reason = trending.get(entry)
                    if reason is None:
                        reason = trending[entry] = self._trending_reason(entry, as_of)
                    entry = reason
                reasons.append(entry)
            out.append(tuple(reasons))
        return out

    def _watched_creators(self, watched: set[int]) -> dict[str, int]:
        """Each creator of something watched -> the first (lowest) watched row of theirs. Built once per list
        from the watched side: a large catalog's creators have thousands of items."""
        catalog = self.catalog
        row_of_hash, items = catalog.row_of_hash, catalog.items
        first: dict[str, int] = {}
        for h in watched:
            row = row_of_hash.get(h)
            if row is not None:
                for creator in items[row].creators:
                    if row < first.get(creator, row + 1):
                        first[creator] = row
        return first

    def _liked_genres(self, weights: dict[str, float]) -> dict[int, tuple[float, str]]:
        """The catalog's genres the user watches often (weight >= 1): column -> (weight, name)."""
        liked = {}
        for col, name in enumerate(self.catalog.genres):
            weight = weights.get(name, 0.0)
            if weight >= 1.0:
                liked[col] = (weight, name)
        return liked

    def _watched_reason(self, row: int) -> Reason:
        reason = self._watched.get(row)
        if reason is None:
            title = self.catalog.title(row)
            item_id = self.catalog.items[row].item_id
            reason = Reason("watched", f"Because you watched {title}", {"item_id": item_id, "title": title})
            self._watched[row] = reason
        return reason

    def _creator_reason(self, creator: str, row: int) -> Reason:
        reason = self._creator.get((creator, row))
        if reason is None:
            title = self.catalog.title(row)
            reason = Reason(
                "creator",
                f"From a creator of {title}, which you watched",
                {"item_id": self.catalog.items[row].item_id, "title": title, "creator": creator},
            )
            self._creator[creator, row] = reason
        return reason

    def _genre_reason(self, genre: str) -> Reason:
        reason = self._genre.get(genre)
        if reason is None:
            reason = self._genre[genre] = Reason("genre", f"{genre}, a genre you watch often", {"genre": genre})
        return reason

    def _new_reason(self, days: int) -> Reason:
        reason = self._new.get(days)
        if reason is None:
            reason = self._new[days] = Reason("new", "New in the catalog this fortnight", {"days": str(days)})
        return reason

    def _trending_reason(self, count: int, as_of: int) -> Reason:
        days = self.window_days
        return Reason(
            "trending",
            f"Trending: {count} views in the last {days} days",
            {"count": str(count), "window_days": str(days), "as_of": str(as_of)},
        )

    @staticmethod
    def _popular(count: int, as_of: int) -> Reason:
        return Reason(
            "popular",
            f"{count} views so far" if count != 1 else "1 view so far",
            {"count": str(count), "as_of": str(as_of)},
        )


_priority = operator.itemgetter(0)
