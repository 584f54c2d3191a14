"""Prequential (test-then-train) evaluation of several recommenders over one event stream, in one pass.

Protocol, for every interaction (u, i, t) in stream order:

* an *interaction* is the first rating or play of the pair (u, i); later events about the pair and searches
  are never evaluation points, but every event is fed to every system;
* the list that counts is the one the system held for u just before t: the list it computed right after u's
  previous event (a real system refreshes a user's list on that user's events only). A user with no event yet
  gets what the system shows a new user, computed at t, before the event is learned;
* items u already interacted with are excluded from the list (the systems exclude them; the evaluator drops
  any that slip through); the held list is `list_length` long, and i is a hit if it is in the first k;
* after all systems learned the event, each computes and stores u's next list.

Metrics per system: HR@k, NDCG@k, MRR over the whole held list (MRR@list_length; 0 when i is absent), catalog
coverage (distinct items in the top-k of the held lists at evaluation points / catalog size), Steck's
miscalibration KL(p || q~) (p: genre mix of u's history at t, q: of the top-k list; averaged over evaluation
points whose user has a history with genres) and the share of top-k recommended items whose reasons are all
verifiably true (`verify_reasons`), checked against the true state when the list was computed: the
interactions observed by then and the stream time then (the latest event ts seen; for a new user's list, the
ts of the event before t, as `rank` has no clock of its own).
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

from threadpoolctl import threadpool_limits

from streamrec.models.base import Reason, Recommendation, Recommender
from streamrec.models.events import CatalogItem, Play, Rating, Search, UserEvent
from streamrec.models.metrics import (
    CALIBRATION_ALPHA,
    Miscalibration,
    hit_at_k,
    ndcg_at_k,
    rank_of,
    reciprocal_rank,
)

DAY_MS = 86_400_000
_NO_ITEMS: frozenset[str] = frozenset()

__all__ = [
    "REASON_KINDS",
    "EvalPoint",
    "EvalResult",
    "GroundTruth",
    "HRPoint",
    "HeldScore",
    "ProgressInfo",
    "prequential",
    "score_held_lists",
    "verify_reasons",
]

REASON_KINDS = ("watched", "search", "creator", "genre", "popular", "trending", "new")


def _normalise_query(query: str) -> str:
    return " ".join(query.casefold().split())


# Evidence values repeat endlessly (the same counts, windows): parse each distinct text once.
@lru_cache(maxsize=65_536)
def _as_int(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if math.isfinite(value) and value == int(value) else None


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
        self._checks: dict[str, Callable[[Mapping[str, str], str, str, int, int | None], bool]] = {
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

    def _list_mix(self, item_ids: tuple[str, ...]) -> dict[str, float]:
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
        check = self._checks.get(reason.kind)
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

    def _check_popular(self, ev: Mapping[str, str], user_id: str, item_id: str, now_ts: int, as_of: int | None) -> bool:
        claimed = _as_int(ev.get("count"))
        if claimed is None:
            return False
        seqs = self._item_seqs.get(item_id)  # `count`, inlined: this is the commonest check
        if seqs is None:
            return claimed == 0
        return claimed == (len(seqs) if as_of is None else bisect_right(seqs, as_of))

    def _check_trending(
        self, ev: Mapping[str, str], user_id: str, item_id: str, now_ts: int, as_of: int | None
    ) -> bool:
        claimed, days = _as_int(ev.get("count")), _as_float(ev.get("window_days"))
        if claimed is None or days is None or days <= 0:
            return False
        window = days * DAY_MS
        return claimed in (
            self.count_in_window(item_id, now_ts, window, as_of),
            self.count_in_window(item_id, now_ts, window, as_of, inclusive=True),
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


@dataclass(frozen=True, slots=True)
class HRPoint:
    events: int  # events processed (all kinds)
    eval_points: int
    cumulative: float  # HR@k over all evaluation points so far
    rolling: float  # HR@k over the last `rolling_window` evaluation points


@dataclass(frozen=True, slots=True)
class EvalResult:
    system: str
    k: int
    list_length: int  # MRR is computed over the whole held list of this length
    events: int
    eval_points: int
    hr: float
    ndcg: float
    mrr: float
    coverage: float
    miscalibration: float | None  # None when no evaluation point had a user history with genres
    miscalibration_points: int
    reasons_true: float  # share of top-k recommended items (at evaluation points) whose reasons all verify
    recommended_items: int  # top-k recommended items checked for reasons
    reason_kinds: Mapping[str, tuple[int, int]]  # kind -> (verified, given)
    seconds: float  # wall-clock time spent inside the system (add_item, learn_one, rank)
    cpu_seconds: float  # the same in CPU time (the evaluation is single-threaded)
    lists: int  # lists computed (rank calls)
    rolling_window: int  # evaluation points behind each `HRPoint.rolling`
    hr_over_time: tuple[HRPoint, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["reason_kinds"] = {k: list(v) for k, v in self.reason_kinds.items()}
        out["hr_over_time"] = [asdict(p) for p in self.hr_over_time]
        return out


@dataclass(frozen=True, slots=True)
class ProgressInfo:
    events: int
    total: int | None
    eval_points: int
    hit_rates: Mapping[str, float]
    elapsed_seconds: float


@dataclass(slots=True)
class _Held:
    recs: list[Recommendation]
    ts: int
    seq: int


class _SystemRun:
    """Per-system accumulators."""

    def __init__(self, name: str, system: Recommender, rolling_window: int) -> None:
        self.name = name
        self.system = system
        self.held: dict[str, _Held] = {}
        self.seconds = 0.0
        self.cpu_seconds = 0.0
        self.lists = 0  # rank calls made
        self.hits = 0.0
        self.ndcg = 0.0
        self.rr = 0.0
        self.points = 0
        self.recent: deque[float] = deque(maxlen=rolling_window)
        self.recent_sum = 0.0
        self.covered: set[str] = set()
        self.miscal_sum = 0.0
        self.miscal_points = 0
        self.items_checked = 0
        self.items_true = 0
        self.kinds: dict[str, list[int]] = {}
        self.series: list[HRPoint] = []

    def charge(self, wall0: float, cpu0: float) -> None:
        """Add the time since (wall0, cpu0) to this system's account."""
        self.seconds += time.perf_counter() - wall0
        self.cpu_seconds += time.process_time() - cpu0

    def cumulative_hr(self) -> float:
        return self.hits / self.points if self.points else 0.0

    def rolling_hr(self) -> float:
        return self.recent_sum / len(self.recent) if self.recent else 0.0

    def record_hit(self, hit: float) -> None:
        if len(self.recent) == self.recent.maxlen:
            self.recent_sum -= self.recent[0]
        self.recent.append(hit)
        self.recent_sum += hit
        self.hits += hit

    def score(self, held: _Held, truth: GroundTruth, point: _Point, k: int, n_list: int, alpha: float) -> list[str]:
        """Score the held list at one evaluation point; returns the item ids it was scored on (history
        excluded, cut at `n_list`)."""
        user, history = point.user_id, point.history
        recs = [r for r in held.recs if r.item_id not in history][:n_list] if history else held.recs[:n_list]
        ids = [r.item_id for r in recs]
        rank = rank_of(point.item_id, ids)
        self.points += 1
        self.record_hit(hit_at_k(rank, k))
        self.ndcg += ndcg_at_k(rank, k)
        self.rr += reciprocal_rank(rank)
        top = ids[:k]
        self.covered.update(top)
        checks, kinds, ts, seq = truth._checks, self.kinds, held.ts, held.seq
        checked = true = 0
        for rec in recs[:k]:
            ok = bool(rec.reasons)
            for reason in rec.reasons:
                check = checks.get(reason.kind)  # `truth.verify`, without its call
                good = check is not None and check(reason.evidence, user, rec.item_id, ts, seq)
                counts = kinds.get(reason.kind)
                if counts is None:
                    counts = kinds[reason.kind] = [0, 0]
                counts[0] += good
                counts[1] += 1
                ok = ok and good
            checked += 1
            true += ok
        self.items_checked += checked
        self.items_true += true
        if point.genre_mix:
            self.miscal_sum += point.calibration.of(tuple(top), truth, alpha)
            self.miscal_points += 1
        return ids

    def sample(self, n_events: int) -> None:
        self.series.append(HRPoint(n_events, self.points, self.cumulative_hr(), self.rolling_hr()))

    def result(self, k: int, n_list: int, n_events: int, catalog_size: int, rolling_window: int) -> EvalResult:
        pts = self.points
        return EvalResult(
            system=self.name,
            k=k,
            list_length=n_list,
            events=n_events,
            eval_points=pts,
            hr=self.hits / pts if pts else 0.0,
            ndcg=self.ndcg / pts if pts else 0.0,
            mrr=self.rr / pts if pts else 0.0,
            coverage=len(self.covered) / catalog_size if catalog_size else 0.0,
            miscalibration=self.miscal_sum / self.miscal_points if self.miscal_points else None,
            miscalibration_points=self.miscal_points,
            reasons_true=self.items_true / self.items_checked if self.items_checked else 0.0,
            recommended_items=self.items_checked,
            reason_kinds={kind: (v[0], v[1]) for kind, v in sorted(self.kinds.items())},
            seconds=self.seconds,
            cpu_seconds=self.cpu_seconds,
            lists=self.lists,
            rolling_window=rolling_window,
            hr_over_time=tuple(self.series),
        )


class _PointCalibration:
    """The miscalibration of the top-k lists scored at one point, shared by the systems: one value per distinct
    list (they often hold the same one: the popularity fallback), and the user's side of it computed once."""

    __slots__ = ("_against", "_p", "_values")

    def __init__(self, p: dict[str, float]) -> None:
        self._p = p
        self._against: Miscalibration | None = None  # built by the first `of` (which brings alpha)
        self._values: dict[tuple[str, ...], float] = {}

    def of(self, top: tuple[str, ...], truth: GroundTruth, alpha: float) -> float:
        value = self._values.get(top)
        if value is None:
            if self._against is None:
                self._against = Miscalibration(self._p, alpha)
            value = self._values[top] = self._against(truth._list_mix(top))
        return value


@dataclass(frozen=True, slots=True)
class _Point:
    """One evaluation point as the scorer needs it: the truth about u at t (before the event is observed)."""

    event_id: str
    user_id: str
    item_id: str
    history: AbstractSet[str]  # u's interactions before t (not copied: read before the event is observed)
    genre_mix: dict[str, float]
    calibration: _PointCalibration


@dataclass(frozen=True, slots=True)
class EvalPoint:
    """What a system's held list was at one evaluation point (for comparing two runs list by list)."""

    event_id: str  # the interaction's event id
    user_id: str
    item_id: str
    new_user: bool  # scored on the new-user list (no earlier event of u)
    items: tuple[str, ...]  # the held list as scored (history excluded, cut at the list length)
    rank: int | None  # 1-based position of item_id in `items`


def prequential(
    events: Iterable[UserEvent | CatalogItem],
    items: Sequence[CatalogItem],
    systems: Mapping[str, Recommender],
    k: int = 10,
    on_progress: Callable[[ProgressInfo], None] | None = None,
    *,
    list_length: int | None = None,
    sample_every: int = 1000,
    rolling_window: int = 5000,
    progress_every: int = 500,
    alpha: float = CALIBRATION_ALPHA,
    skip_unused_lists: bool = True,
    on_point: Callable[[str, EvalPoint], None] | None = None,
) -> dict[str, EvalResult]:
    """Run every system over the same events in one pass (see the module docstring for the protocol).

    `items` is the initial catalog, added to every system before the first event; `CatalogItem`s inside
    `events` are added when they come (at the stream time of the previous event). `list_length` (default k)
    is the length of the held list: HR and NDCG look at its first k items, MRR at all of it.

    With `skip_unused_lists`, a list is not computed after an event when it can never be consulted: the
    user's next event is not an evaluation point (a rating right after the play of the same item, a search) or
    there is none, so it is replaced before it is used. `rank` is pure, so the results are the same.
    `on_point(system, point)` is called with every system's held list at every evaluation point.
    """
    if k < 1:
        raise ValueError("k must be >= 1")
    n_list = max(k, list_length or k)
    stream: Sequence[UserEvent | CatalogItem] = events if isinstance(events, Sequence) else list(events)
    total = len(stream)
    needed = _lists_needed(stream) if skip_unused_lists else None
    users_seen: set[str] = set()
    truth = GroundTruth(items)
    runs = [_SystemRun(name, system, rolling_window) for name, system in systems.items()]
    started = time.perf_counter()
    with threadpool_limits(limits=1, user_api="blas"):
        for run in runs:
            t0, c0 = time.perf_counter(), time.process_time()
            for item in items:
                run.system.add_item(item)
            run.charge(t0, c0)

        n_events = 0
        n_points = 0

        def report() -> None:
            if on_progress is not None:
                on_progress(
                    ProgressInfo(
                        events=n_events,
                        total=total,
                        eval_points=n_points,
                        hit_rates={r.name: r.cumulative_hr() for r in runs},
                        elapsed_seconds=time.perf_counter() - started,
                    )
                )

        report()
        for position, event in enumerate(stream):
            n_events += 1
            if isinstance(event, CatalogItem):
                truth.add_item(event, truth.last_ts)
                for run in runs:
                    t0, c0 = time.perf_counter(), time.process_time()
                    run.system.add_item(event)
                    run.charge(t0, c0)
            else:
                user = event.user_id
                if not isinstance(event, Search) and not truth.has_interacted(user, event.item_id):
                    n_points += 1
                    new_user = user not in users_seen
                    _evaluate_point(runs, truth, event, k, n_list, alpha, new_user, on_point)
                users_seen.add(user)
                truth.observe(event)
                now = truth.clock(event.ts)
                keep = needed is None or needed[position]
                for run in runs:
                    t0, c0 = time.perf_counter(), time.process_time()
                    run.system.learn_one(event)
                    if keep:
                        recs = run.system.rank(user, n_list)
                        run.lists += 1
                    run.charge(t0, c0)
                    if keep:
                        run.held[user] = _Held(recs, now, truth.seq)
                    else:
                        run.held.pop(user, None)
            if n_events % sample_every == 0:
                for run in runs:
                    run.sample(n_events)
            if n_events % progress_every == 0:
                report()
        if n_events % sample_every != 0:
            for run in runs:
                run.sample(n_events)
        report()

    catalog_size = len(truth.items)
    return {run.name: run.result(k, n_list, n_events, catalog_size, rolling_window) for run in runs}


@dataclass(frozen=True, slots=True)
class HeldScore:
    """`score_held_lists`' result: the metrics, and how many evaluation points had no list to score."""

    result: EvalResult
    missing_lists: int  # evaluation points scored on an empty list because none was supplied
    new_user_points: int  # evaluation points that are a user's first event (scored on a new-user list)


def score_held_lists(
    events: Iterable[UserEvent | CatalogItem],
    items: Sequence[CatalogItem],
    lists: Mapping[str, Sequence[Recommendation]],
    new_user_lists: Mapping[str, Sequence[Recommendation]],
    *,
    system: str,
    k: int = 10,
    list_length: int | None = None,
    sample_every: int = 1000,
    rolling_window: int = 5000,
    alpha: float = CALIBRATION_ALPHA,
    on_point: Callable[[str, EvalPoint], None] | None = None,
) -> HeldScore:
    """Score lists computed elsewhere (e.g. by the worker, read back from Kafka) with `prequential`'s protocol.

    `lists` maps an event id to the list computed right after that event (its trigger); the held list at an
    evaluation point (u, i, t) is the one triggered by u's previous event. `new_user_lists` maps the id of a
    user's first event to the new-user list shown before it. A missing list is scored as an empty one (a
    miss) and counted in `missing_lists`. Reasons are verified against the state of the stream (in stream
    order) right after the trigger event, exactly as `prequential` does for the lists it computes.
    """
    if k < 1:
        raise ValueError("k must be >= 1")
    n_list = max(k, list_length or k)
    truth = GroundTruth(items)
    run = _SystemRun(system, _NoSystem(), rolling_window)
    previous: dict[str, tuple[str, int, int]] = {}  # user -> (event id, stream clock, interaction seq) after it
    missing = 0
    new_users = 0
    n_events = 0
    for event in events:
        n_events += 1
        if isinstance(event, CatalogItem):
            truth.add_item(event, truth.last_ts)
        else:
            user = event.user_id
            if not isinstance(event, Search) and not truth.has_interacted(user, event.item_id):
                before = previous.get(user)
                if before is None:
                    new_users += 1
                    recs = new_user_lists.get(event.event_id)
                    held = _Held(list(recs or ()), truth.clock(event.ts), truth.seq)
                else:
                    recs = lists.get(before[0])
                    held = _Held(list(recs or ()), before[1], before[2])
                missing += recs is None
                point = _point_of(truth, event)
                ids = run.score(held, truth, point, k, n_list, alpha)
                if on_point is not None:
                    on_point(system, _eval_point(point, ids, before is None))
            truth.observe(event)
            previous[user] = (event.event_id, truth.clock(event.ts), truth.seq)
        if n_events % sample_every == 0:
            run.sample(n_events)
    if n_events % sample_every != 0:
        run.sample(n_events)
    result = run.result(k, n_list, n_events, len(truth.items), rolling_window)
    return HeldScore(result=result, missing_lists=missing, new_user_points=new_users)


class _NoSystem(Recommender):
    """Stands in for a system whose lists were computed elsewhere (`score_held_lists`)."""

    name = "external"

    def add_item(self, item: CatalogItem) -> None:
        raise NotImplementedError

    def learn_one(self, event: UserEvent) -> bool:
        raise NotImplementedError

    def rank(self, user_id: str, n: int) -> list[Recommendation]:
        raise NotImplementedError


def _point_of(truth: GroundTruth, event: Rating | Play) -> _Point:
    user = event.user_id
    mix = truth.user_genre_mix(user)
    return _Point(event.event_id, user, event.item_id, truth.history(user), mix, _PointCalibration(mix))


def _eval_point(point: _Point, ids: list[str], new_user: bool) -> EvalPoint:
    return EvalPoint(point.event_id, point.user_id, point.item_id, new_user, tuple(ids), rank_of(point.item_id, ids))


def _lists_needed(stream: Sequence[UserEvent | CatalogItem]) -> list[bool]:
    """Per position: will the list computed after this event be consulted (the user's next event is an
    evaluation point)? Catalog items get False."""
    is_point: list[bool] = []
    pairs: set[tuple[str, str]] = set()
    for event in stream:
        if isinstance(event, CatalogItem | Search):
            is_point.append(False)
            continue
        pair = (event.user_id, event.item_id)
        is_point.append(pair not in pairs)
        pairs.add(pair)
    needed = [False] * len(stream)
    next_is_point: dict[str, bool] = {}
    for position in range(len(stream) - 1, -1, -1):
        event = stream[position]
        if isinstance(event, CatalogItem):
            continue
        needed[position] = next_is_point.get(event.user_id, False)
        next_is_point[event.user_id] = is_point[position]
    return needed


def _evaluate_point(
    runs: Sequence[_SystemRun],
    truth: GroundTruth,
    event: Rating | Play,
    k: int,
    n_list: int,
    alpha: float,
    new_user: bool,
    on_point: Callable[[str, EvalPoint], None] | None,
) -> None:
    """Score every system's held list for the event's user against the interaction."""
    point = _point_of(truth, event)
    user = point.user_id
    for run in runs:
        held = run.held.get(user)
        if held is None:  # no event of this user yet: the new-user list, computed now (before learning)
            if not new_user:
                raise RuntimeError(f"no held list for {user!r}, who already had events")
            t0, c0 = time.perf_counter(), time.process_time()
            recs = run.system.rank(user, n_list)
            run.lists += 1
            run.charge(t0, c0)
            held = _Held(recs, truth.clock(event.ts), truth.seq)
        ids = run.score(held, truth, point, k, n_list, alpha)
        if on_point is not None:
            on_point(run.name, _eval_point(point, ids, new_user))
