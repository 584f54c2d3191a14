"""Scoring lists computed elsewhere (e.g. by the worker, read back from Kafka) with the prequential protocol."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from streamrec.models.base import Recommendation
from streamrec.models.evaluate.results import EvalPoint, EvalResult
from streamrec.models.evaluate.scoring import HeldList, SystemMetrics, eval_point, point_of
from streamrec.models.evaluate.truth import GroundTruth
from streamrec.models.events import CatalogItem, Search, UserEvent
from streamrec.models.metrics import CALIBRATION_ALPHA


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
    fold_order: Sequence[UserEvent] | None = None,
) -> HeldScore:
    """Score lists computed elsewhere with `prequential`'s protocol.

    `lists` maps an event id to the list computed right after that event (its trigger); the held list at an
    evaluation point (u, i, t) is the one triggered by u's previous event. `new_user_lists` maps the id of a
    user's first event to the new-user list shown before it. A missing list is scored as an empty one (a
    miss) and counted in `missing_lists`. Reasons are verified against the state of the stream (in stream
    order) right after the trigger event, exactly as `prequential` does for the lists it computes. `fold_order`:
    the events in the order the item-signal log folded them, when that is not the stream's (several workers);
    counts quoted with a log position are checked in that order.
    """
    if k < 1:
        raise ValueError("k must be >= 1")
    n_list = max(k, list_length or k)
    truth = GroundTruth(items)
    if fold_order is not None:
        truth.log_order = GroundTruth(items)
        for folded in fold_order:
            truth.log_order.observe(folded)
    metrics = SystemMetrics(system, truth, k, n_list, alpha, rolling_window)
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
                    held = HeldList(list(recs or ()), truth.clock(event.ts), truth.seq)
                else:
                    recs = lists.get(before[0])
                    held = HeldList(list(recs or ()), before[1], before[2])
                missing += recs is None
                point = point_of(truth, event)
                ids = metrics.update(held, point)
                if on_point is not None:
                    on_point(system, eval_point(point, ids, before is None))
            truth.observe(event)
            previous[user] = (event.event_id, truth.clock(event.ts), truth.seq)
        if n_events % sample_every == 0:
            metrics.sample(n_events)
    if n_events % sample_every != 0:
        metrics.sample(n_events)
    return HeldScore(result=metrics.result(n_events), missing_lists=missing, new_user_points=new_users)
