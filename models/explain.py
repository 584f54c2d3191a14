"""Reasons a person can read and we can prove: each names the evidence (an item watched, a query made, a count).

Reasons are chosen from what actually drove the score, strongest first; a reason is only offered when its
evidence holds, so every item gets at least one true reason (an item's view count is always true).
"""

from __future__ import annotations

from dataclasses import dataclass

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
