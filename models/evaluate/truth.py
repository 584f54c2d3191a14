"""What really happened in the stream so far (the ground truth), and the check of every reason a list gives
against it: a reason is true only if the evidence it names holds at the time the list was computed."""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache

from streamrec.models.base import Reason, Recommendation
from streamrec.models.events import DAY_MS, CatalogItem, Search, UserEvent
from streamrec.models.metrics.reasons import ReasonCheck

_NO_ITEMS: frozenset[str] = frozenset()

REASON_KINDS = ("watched", "search", "creator", "genre", "popular", "trending", "new")


def _normalise_query(query: str) -> str:
    return " ".join(query.casefold().split())


# Evidence values repeat endlessly (the same counts, windows): parse each distinct text once.
@lru_cache(maxsize=65_536)
def _as_int(text: str | None) -> int | None:
    value = _as_float(text)
    return int(value) if value is not None and value == int(value) else None


@lru_cache(maxsize=65_536)
def _as_float(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


class GroundTruth:
    """What really happened so far: the catalog (with when each item was added), users' interactions and
    searches, and every item's interactions in stream order. Used to check reasons and exclude history.

    `as_of` arguments are interaction sequence numbers (`self.seq` at the time a list was computed): counts are
    then taken over the interactions observed up to that point only.
    """

    def __init__(self, items: Iterable[CatalogItem] = ()) -> None:
        self.items: dict[str, CatalogItem] = {}
        self._added_ts: dict[str, int | None] = {}  # None: initial catalog, added "at the start"
        self.start_ts: int | None = None  # ts of the first event: when the initial catalog was added
        self.last_ts: int | None = None
        self.seq = 0  # interactions observed so far
        self._seq_after_events = [0]  # per number of events observed: `seq` then
        # The same events in the order the item-signal log folded them, where that is not the stream's (several
        # workers): counts quoted with a log position (evidence `state`) are checked against it.
        self.log_order: GroundTruth | None = None
        self._ordered = True  # event timestamps never decreased (enables bisect on timestamps)
        self._history: dict[str, set[str]] = {}
        self._queries: dict[str, set[str]] = {}
        # Steck genre mixes: per item its (genre, 1/|genres|) shares; per user the running sum over history
        self._item_shares: dict[str, tuple[tuple[str, float], ...]] = {}
        self._user_genre_sum: dict[str, dict[str, float]] = {}
        self._user_genre_items: dict[str, int] = {}  # history items with at least one genre
        self._item_seqs: dict[str, list[int]] = {}
        self._item_ts: dict[str, list[int]] = {}
        # q(g) of the top-k lists scored so far, by their item ids: lists repeat (popularity moves slowly, and
        # users without a model vector get the popularity list from every baseline)
        self._list_mixes: dict[tuple[str, ...], dict[str, float]] = {}
        # one checker per reason kind (a dict lookup instead of a chain of string comparisons)
        self.checks: dict[str, ReasonCheck] = {
            "watched": self._check_watched,
            "search": self._check_search,
            "creator": self._check_creator,
            "genre": self._check_genre,
            "popular": self._check_popular,
            "trending": self._check_trending,
            "new": self._check_new,
        }
        for item in items:
            self.add_item(item, None)

    # -- updates ---------------------------------------------------------------------------------------
    def add_item(self, item: CatalogItem, ts: int | None) -> None:
        """Register a catalog item; `ts` None for the initial catalog, else the stream time it appeared."""
        if item.item_id not in self.items:
            self._added_ts[item.item_id] = ts
        self.items[item.item_id] = item
        genres = tuple(dict.fromkeys(item.genres))
        shares = tuple((g, 1.0 / len(genres)) for g in genres)
        if self._list_mixes and self._item_shares.get(item.item_id, ()) != shares:
            self._list_mixes.clear()  # a cached list mix may contain the item's old genres
        self._item_shares[item.item_id] = shares

    def observe(self, event: UserEvent) -> bool:
        """Record one event; True if it is an interaction (first event about its user-item pair)."""
        is_interaction = self._observe(event)
        self._seq_after_events.append(self.seq)
        return is_interaction

    def seq_after(self, events: int) -> int:
        """The interaction number once the first `events` events were observed (an item-signal log position)."""
        return self._seq_after_events[events]

    def _observe(self, event: UserEvent) -> bool:
        if self.start_ts is None:
            self.start_ts = event.ts
        if self.last_ts is not None and event.ts < self.last_ts:
            self._ordered = False
        self.last_ts = event.ts if self.last_ts is None else max(self.last_ts, event.ts)
        if isinstance(event, Search):
            self._queries.setdefault(event.user_id, set()).add(_normalise_query(event.query))
            return False
        history = self._history.setdefault(event.user_id, set())
        if event.item_id in history:
            return False
        history.add(event.item_id)
        self.seq += 1
        self._item_seqs.setdefault(event.item_id, []).append(self.seq)
        self._item_ts.setdefault(event.item_id, []).append(event.ts)
        shares = self._item_shares.get(event.item_id)
        if shares:
            totals = self._user_genre_sum.setdefault(event.user_id, {})
            for g, share in shares:
                totals[g] = totals.get(g, 0.0) + share
            self._user_genre_items[event.user_id] = self._user_genre_items.get(event.user_id, 0) + 1
        return True

    # -- queries ---------------------------------------------------------------------------------------
    def creators_of(self, item_id: str) -> tuple[str, ...]:
        """The item's creators (none for an item the catalog lacks)."""
        item = self.items.get(item_id)
        return item.creators if item is not None else ()

    def history(self, user_id: str) -> set[str]:
        return self._history.get(user_id, set())

    def has_interacted(self, user_id: str, item_id: str) -> bool:
        return item_id in self._history.get(user_id, ())

    def queries(self, user_id: str) -> set[str]:
        return self._queries.get(user_id, set())

    def user_genre_mix(self, user_id: str) -> dict[str, float]:
        """Steck's p(g|u) over the user's history (uniform item weights); empty when no item has a genre."""
        n = self._user_genre_items.get(user_id, 0)
        if n == 0:
            return {}
        return {g: v / n for g, v in self._user_genre_sum[user_id].items()}

    def list_genre_mix(self, item_ids: Iterable[str]) -> dict[str, float]:
        """Steck's q(g) of a list (uniform weights over its items with genres); empty when none has one."""
        totals: dict[str, float] = {}
        n = 0
        for item_id in item_ids:
            shares = self._item_shares.get(item_id)
            if shares:
                n += 1
                for g, share in shares:
                    totals[g] = totals.get(g, 0.0) + share
        return {g: v / n for g, v in totals.items()} if n else {}

    def cached_list_mix(self, item_ids: tuple[str, ...]) -> dict[str, float]:
        """`list_genre_mix`, memoised (read-only results; the memo is dropped when an item's genres change)."""
        mix = self._list_mixes.get(item_ids)
        if mix is None:
            if len(self._list_mixes) >= 20_000:  # bound the memory; the lists that repeat come back at once
                self._list_mixes.clear()
            mix = self._list_mixes[item_ids] = self.list_genre_mix(item_ids)
        return mix

    def clock(self, default: int) -> int:
        """The stream time: the latest event ts observed so far (`default` before the first event)."""
        return self.last_ts if self.last_ts is not None else default

    def added_ts(self, item_id: str) -> int | None:
        """When the item entered the catalog (the initial catalog: the first event's ts); None if unknown."""
        if item_id not in self._added_ts:
            return None
        ts = self._added_ts[item_id]
        return ts if ts is not None else self.start_ts

    def count(self, item_id: str, as_of: int | None = None) -> int:
        """Interactions (distinct users) with the item, up to interaction number `as_of` (default: all)."""
        seqs = self._item_seqs.get(item_id, [])
        return len(seqs) if as_of is None else bisect_right(seqs, as_of)

    def count_in_window(
        self,
        item_id: str,
        now_ts: int,
        window_ms: float,
        as_of: int | None = None,
        *,
        inclusive: bool = False,
    ) -> int:
        """Interactions with the item with ts in (now - window, now] (`inclusive`: [now - window, now])."""
        seqs = self._item_seqs.get(item_id, [])
        stamps = self._item_ts.get(item_id, [])
        hi = len(seqs) if as_of is None else bisect_right(seqs, as_of)
        lo_ts = now_ts - window_ms
        if self._ordered:
            end = bisect_right(stamps, now_ts, 0, hi)
            start = bisect_left(stamps, lo_ts, 0, end) if inclusive else bisect_right(stamps, lo_ts, 0, end)
            return end - start
        if inclusive:
            return sum(1 for ts in stamps[:hi] if lo_ts <= ts <= now_ts)
        return sum(1 for ts in stamps[:hi] if lo_ts < ts <= now_ts)

    # -- verification ----------------------------------------------------------------------------------
    def verify(self, reason: Reason, user_id: str, item_id: str, now_ts: int, as_of: int | None = None) -> bool:
        """Is `reason`, given for recommending `item_id` to `user_id` at `now_ts`, checkably true?"""
        check = self.checks.get(reason.kind)
        return check is not None and check(reason.evidence, user_id, item_id, now_ts, as_of)  # unknown: False

    def _check_watched(self, ev: Mapping[str, str], user_id: str, item_id: str, now_ts: int, as_of: int | None) -> bool:
        return ev.get("item_id") in self._history.get(user_id, _NO_ITEMS)

    def _check_search(self, ev: Mapping[str, str], user_id: str, item_id: str, now_ts: int, as_of: int | None) -> bool:
        query = ev.get("query")
        return query is not None and _normalise_query(query) in self.queries(user_id)

    def _check_creator(self, ev: Mapping[str, str], user_id: str, item_id: str, now_ts: int, as_of: int | None) -> bool:
        watched, creator = ev.get("item_id"), ev.get("creator")
        if watched is None or creator is None or watched not in self.history(user_id):
            return False
        source, target = self.items.get(watched), self.items.get(item_id)
        return source is not None and target is not None and creator in source.creators and creator in target.creators

    def _check_genre(self, ev: Mapping[str, str], user_id: str, item_id: str, now_ts: int, as_of: int | None) -> bool:
        genre, target = ev.get("genre"), self.items.get(item_id)
        return (
            genre is not None
            and target is not None
            and genre in target.genres
            and genre in self._user_genre_sum.get(user_id, ())
        )

    def _counted_at(
        self, ev: Mapping[str, str], now_ts: int, as_of: int | None
    ) -> tuple[GroundTruth, int, int | None] | None:
        """Where and when a count was taken: here, at the list's time and interactions; or, for counts of an item
        side folded from the item-signal log (evidence `state`), in the log's order at that position, with the
        counting window's time (None: unreadable evidence)."""
        if "state" not in ev:
            return self, now_ts, as_of
        truth = self.log_order or self
        state, window_ts = _as_int(ev["state"]), _as_int(ev.get("as_of"))
        if state is None or window_ts is None or not 0 <= state < len(truth._seq_after_events):
            return None
        return truth, window_ts, truth.seq_after(state)

    def _check_popular(self, ev: Mapping[str, str], user_id: str, item_id: str, now_ts: int, as_of: int | None) -> bool:
        claimed, counted = _as_int(ev.get("count")), self._counted_at(ev, now_ts, as_of)
        if claimed is None or counted is None:
            return False
        truth, _, as_of = counted
        seqs = truth._item_seqs.get(item_id)  # `count`, inlined: this is the commonest check
        if seqs is None:
            return claimed == 0
        return claimed == (len(seqs) if as_of is None else bisect_right(seqs, as_of))

    def _check_trending(
        self, ev: Mapping[str, str], user_id: str, item_id: str, now_ts: int, as_of: int | None
    ) -> bool:
        claimed, days = _as_int(ev.get("count")), _as_float(ev.get("window_days"))
        counted = self._counted_at(ev, now_ts, as_of)
        if claimed is None or days is None or days <= 0 or counted is None:
            return False
        truth, now_ts, as_of = counted
        window = days * DAY_MS
        return claimed in (
            truth.count_in_window(item_id, now_ts, window, as_of),
            truth.count_in_window(item_id, now_ts, window, as_of, inclusive=True),
        )

    def _check_new(self, ev: Mapping[str, str], user_id: str, item_id: str, now_ts: int, as_of: int | None) -> bool:
        days = _as_float(ev.get("days"))
        added = self.added_ts(item_id)
        if days is None or days < 0 or added is None:
            return False
        return 0 <= now_ts - added <= days * DAY_MS


def verify_reasons(
    recommendations: Sequence[Recommendation],
    user_id: str,
    truth: GroundTruth,
    now_ts: int,
    as_of: int | None = None,
) -> list[bool]:
    """Per recommendation: True iff it has at least one reason and every reason is verifiably true."""
    return [
        bool(rec.reasons) and all(truth.verify(r, user_id, rec.item_id, now_ts, as_of) for r in rec.reasons)
        for rec in recommendations
    ]
