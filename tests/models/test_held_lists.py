"""`score_held_lists`: lists computed elsewhere (the worker's, read back from Kafka) scored with the prequential
protocol. The held list at (u, i, t) is the one triggered by u's previous event; a user's first event uses the
new-user list; a missing list is scored as a miss and counted."""

from __future__ import annotations

import pytest

from streamrec.models.base import Reason, Recommendation, Recommender
from streamrec.models.evaluate import EvalPoint, prequential, score_held_lists
from streamrec.models.events import CatalogItem, Play, Rating, Search, UserEvent

CATALOG = [
    CatalogItem("A", "Alpha", ("Action",), ("ann",)),
    CatalogItem("B", "Beta", ("Action", "Comedy"), ("bob",)),
    CatalogItem("C", "Gamma", ("Comedy",), ("ann",)),
    CatalogItem("D", "Delta", ("Drama",), ("dan",)),
]
POPULAR = (Reason("popular", "views", {"count": "0"}),)


def recs(*ids: str) -> list[Recommendation]:
    return [Recommendation(i, n, 1.0 / n, ()) for n, i in enumerate(ids, start=1)]


class Rotating(Recommender):
    """A deterministic system whose lists depend on how many events it learned (so the trigger matters)."""

    def __init__(self) -> None:
        self.learned = 0
        self.seen: dict[str, set[str]] = {}

    def add_item(self, item: CatalogItem) -> None:
        pass

    def learn_one(self, event: UserEvent) -> bool:
        self.learned += 1
        if not isinstance(event, Search):
            self.seen.setdefault(event.user_id, set()).add(event.item_id)
        return True

    def rank(self, user_id: str, n: int) -> list[Recommendation]:
        order = ["A", "B", "C", "D"]
        shift = self.learned % 4
        rotated = order[shift:] + order[:shift]
        ids = [i for i in rotated if i not in self.seen.get(user_id, set())][:n]
        return [Recommendation(i, r, 1.0, POPULAR) for r, i in enumerate(ids, start=1)]


def test_held_list_is_the_one_triggered_by_the_users_previous_event() -> None:
    events: list[UserEvent] = [
        Rating("e1", "u", "A", 4.0, 1_000),  # first event: the new-user list
        Rating("e2", "v", "C", 4.0, 2_000),  # another user in between: not u's trigger
        Search("e3", "u", "beta", 3_000),  # u's previous event for e4, though it is a search
        Rating("e4", "u", "B", 4.0, 4_000),
    ]
    lists = {"e1": recs("C", "D"), "e2": recs("B"), "e3": recs("B", "C")}
    new_user = {"e1": recs("A", "B"), "e2": recs("D", "C")}
    points: list[EvalPoint] = []
    held = score_held_lists(
        events, CATALOG, lists, new_user, system="s", k=1, list_length=2, on_point=lambda _s, p: points.append(p)
    )
    assert [(p.event_id, p.items, p.rank, p.new_user) for p in points] == [
        ("e1", ("A", "B"), 1, True),
        ("e2", ("D", "C"), 2, True),
        ("e4", ("B", "C"), 1, False),  # from e3's list, not e1's or e2's
    ]
    assert held.result.eval_points == 3
    assert held.result.hr == pytest.approx(2 / 3)
    assert held.new_user_points == 2
    assert held.missing_lists == 0


def test_history_is_excluded_and_repeat_pairs_are_not_points() -> None:
    events: list[UserEvent] = [
        Play("p1", "u", "A", 100.0, 1_000),
        Rating("r1", "u", "A", 5.0, 1_000),  # same pair: not an evaluation point
        Rating("r2", "u", "B", 5.0, 2_000),
    ]
    lists = {"p1": recs("C"), "r1": recs("A", "B")}  # A slipped through: dropped, so B is at rank 1
    points: list[EvalPoint] = []
    held = score_held_lists(
        events, CATALOG, lists, {"p1": recs("A")}, system="s", k=1, on_point=lambda _s, p: points.append(p)
    )
    assert [(p.event_id, p.items) for p in points] == [("p1", ("A",)), ("r2", ("B",))]
    assert held.result.hr == 1.0


def test_missing_lists_are_misses_and_counted() -> None:
    events: list[UserEvent] = [Rating("e1", "u", "A", 4.0, 1_000), Rating("e2", "u", "B", 4.0, 2_000)]
    held = score_held_lists(events, CATALOG, {}, {}, system="s", k=2)
    assert held.missing_lists == 2
    assert held.result.hr == 0.0
    assert held.result.eval_points == 2


def test_scoring_the_fast_paths_own_lists_reproduces_its_result() -> None:
    """Record every list a system computes after each event (and the new-user lists), score them with
    `score_held_lists`: every metric and every held list equals `prequential`'s."""
    events: list[UserEvent] = [
        Rating("e1", "u", "A", 4.0, 1_000),
        Rating("e2", "v", "A", 4.0, 2_000),
        Search("e3", "u", "gamma", 2_500),
        Rating("e4", "u", "C", 4.0, 3_000),
        Rating("e5", "v", "B", 4.0, 4_000),
        Rating("e6", "u", "B", 4.0, 5_000),
        Rating("e7", "w", "D", 4.0, 6_000),
        Rating("e8", "v", "D", 4.0, 7_000),
    ]
    recorder = Rotating()
    lists: dict[str, list[Recommendation]] = {}
    new_user: dict[str, list[Recommendation]] = {}
    users: set[str] = set()
    for event in events:
        if event.user_id not in users:
            users.add(event.user_id)
            new_user[event.event_id] = recorder.rank(event.user_id, 3)
        recorder.learn_one(event)
        lists[event.event_id] = recorder.rank(event.user_id, 3)

    fast_points: list[EvalPoint] = []
    fast = prequential(
        events, CATALOG, {"s": Rotating()}, k=2, list_length=3, on_point=lambda _s, p: fast_points.append(p)
    )["s"]
    points: list[EvalPoint] = []
    held = score_held_lists(
        events, CATALOG, lists, new_user, system="s", k=2, list_length=3, on_point=lambda _s, p: points.append(p)
    )
    assert points == fast_points
    other = held.result
    for name in ("eval_points", "hr", "ndcg", "mrr", "coverage", "miscalibration", "reasons_true", "reason_kinds"):
        assert getattr(other, name) == getattr(fast, name), name
