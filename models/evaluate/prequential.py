"""Prequential (test-then-train) evaluation of several recommenders over one event stream, in one pass."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence

from threadpoolctl import threadpool_limits

from streamrec.models.base import Recommender
from streamrec.models.evaluate.results import EvalPoint, EvalResult, ProgressInfo
from streamrec.models.evaluate.scoring import HeldList, SystemMetrics, eval_point, point_of
from streamrec.models.evaluate.truth import GroundTruth
from streamrec.models.events import CatalogItem, Play, Rating, Search, UserEvent
from streamrec.models.metrics import CALIBRATION_ALPHA


class _SystemRun:
    """A system under evaluation: the list it holds for each user, the time spent inside it, and its metrics."""

    def __init__(self, system: Recommender, metrics: SystemMetrics) -> None:
        self.name = metrics.system
        self.system = system
        self.metrics = metrics
        self.held: dict[str, HeldList] = {}
        self.seconds = 0.0
        self.cpu_seconds = 0.0
        self.lists = 0  # rank calls made

    def charge(self, wall0: float, cpu0: float) -> None:
        """Add the time since (wall0, cpu0) to this system's account."""
        self.seconds += time.perf_counter() - wall0
        self.cpu_seconds += time.process_time() - cpu0

    def result(self, n_events: int) -> EvalResult:
        return self.metrics.result(n_events, seconds=self.seconds, cpu_seconds=self.cpu_seconds, lists=self.lists)


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
    """Run every system over the same events in one pass. For every interaction (u, i, t) in stream order:

    * an *interaction* is the first rating or play of the pair (u, i); later events about the pair and searches
      are never evaluation points, but every event is fed to every system;
    * the list that counts is the one the system held for u just before t: the list it computed right after u's
      previous event (a real system refreshes a user's list on that user's events only). A user with no event
      yet gets what the system shows a new user, computed at t, before the event is learned;
    * items u already interacted with are excluded from the list (the systems exclude them; the evaluator drops
      any that slip through); the held list is `list_length` long, and i is a hit if it is in the first k;
    * after all systems learned the event, each computes and stores u's next list.

    Metrics per system (`scoring.SystemMetrics`): HR@k, NDCG@k, MRR over the whole held list (MRR@list_length;
    0 when i is absent), catalog coverage (distinct items in the top-k of the held lists at evaluation points /
    catalog size), Steck's miscalibration KL(p || q~) (p: genre mix of u's history at t, q: of the top-k list;
    averaged over evaluation points whose user has a history with genres) and the share of top-k recommended
    items whose reasons are all verifiably true (`verify_reasons`), checked against the true state when the list
    was computed: the interactions observed by then and the stream time then (the latest event ts seen; for a
    new user's list, the ts of the event before t, as `rank` has no clock of its own).

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
    runs = [
        _SystemRun(system, SystemMetrics(name, truth, k, n_list, alpha, rolling_window))
        for name, system in systems.items()
    ]
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
                        hit_rates={r.name: r.metrics.hit_rate.get() for r in runs},
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
                    _evaluate_point(runs, truth, event, n_list, new_user, on_point)
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
                        run.held[user] = HeldList(recs, now, truth.seq)
                    else:
                        run.held.pop(user, None)
            if n_events % sample_every == 0:
                for run in runs:
                    run.metrics.sample(n_events)
            if n_events % progress_every == 0:
                report()
        if n_events % sample_every != 0:
            for run in runs:
                run.metrics.sample(n_events)
        report()

    return {run.name: run.result(n_events) for run in runs}


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
    n_list: int,
    new_user: bool,
    on_point: Callable[[str, EvalPoint], None] | None,
) -> None:
    """Score every system's held list for the event's user against the interaction."""
    point = point_of(truth, event)
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
            held = HeldList(recs, truth.clock(event.ts), truth.seq)
        ids = run.metrics.update(held, point)
        if on_point is not None:
            on_point(run.name, eval_point(point, ids, new_user))
