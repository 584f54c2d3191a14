"""Prequential evaluation on tiny synthetic streams where every right answer can be counted by hand."""

from __future__ import annotations

import math

import pytest

from streamrec.models.base import Reason, Recommendation, Recommender
from streamrec.models.baselines import IncrementalPopularity
from streamrec.models.evaluate import GroundTruth, ProgressInfo, prequential, verify_reasons
from streamrec.models.events import DAY_MS, CatalogItem, Play, Rating, Search, UserEvent

CATALOG = [
    CatalogItem("A", "Alpha", ("Action",), ("ann",)),
    CatalogItem("B", "Beta", ("Action", "Comedy"), ("bob",)),
    CatalogItem("C", "Gamma", ("Comedy",), ("ann",)),
    CatalogItem("D", "Delta", ("Drama",), ("dan",)),
]


def rating(n: int, user: str, item: str, ts: int | None = None) -> Rating:
    return Rating(f"e{n}", user, item, 4.0, n * 1_000 if ts is None else ts)


class FixedList(Recommender):
    """Always the same order, minus what the user interacted with; counts what it was fed."""

    name = "fixed"

    def __init__(self, order: list[str], reasons: tuple[Reason, ...] = ()) -> None:
        self.order = order
        self.reasons = reasons
        self.seen: dict[str, set[str]] = {}
        self.learned: list[UserEvent] = []

    def add_item(self, item: CatalogItem) -> None:
        pass

    def learn_one(self, event: UserEvent) -> bool:
        self.learned.append(event)
        if not isinstance(event, Search):
            self.seen.setdefault(event.user_id, set()).add(event.item_id)
        return True

    def rank(self, user_id: str, n: int) -> list[Recommendation]:
        seen = self.seen.get(user_id, set())
        items = [i for i in self.order if i not in seen][:n]
        return [Recommendation(i, r, 1.0 / r, self.reasons) for r, i in enumerate(items, start=1)]


class LastLearned(Recommender):
    """Recommends the last item it learned about from anyone, without excluding history: it would score every
    interaction if it were ranked after learning it."""

    name = "last"

    def __init__(self) -> None:
        self.last: str | None = None

    def add_item(self, item: CatalogItem) -> None:
        pass

    def learn_one(self, event: UserEvent) -> bool:
        if not isinstance(event, Search):
            self.last = event.item_id
        return True

    def rank(self, user_id: str, n: int) -> list[Recommendation]:
        return [] if self.last is None else [Recommendation(self.last, 1, 1.0, ())]


def test_fixed_list_hits_counted_by_hand() -> None:
    events = [rating(1, "u", "A"), rating(2, "u", "C"), rating(3, "v", "D"), rating(4, "v", "A")]
    system = FixedList(["A", "B", "C", "D"])
    r = prequential(events, CATALOG, {"fixed": system}, k=2)["fixed"]
    # u new -> [A, B]: A at rank 1 (hit). u after A -> [B, C]: C at rank 2 (hit).
    # v new -> [A, B]: D absent (miss). v after D -> [A, B]: A at rank 1 (hit).
    assert r.eval_points == 4
    assert r.hr == pytest.approx(3 / 4)
    assert r.ndcg == pytest.approx((1 + 1 / math.log2(3) + 0 + 1) / 4)
    assert r.mrr == pytest.approx((1 + 1 / 2 + 0 + 1) / 4)  # held list = k = 2 here
    assert r.coverage == pytest.approx(3 / 4)  # A, B, C appear in held top-2 lists
    assert r.list_length == 2
    assert r.events == 4


def test_mrr_uses_the_whole_held_list() -> None:
    events = [rating(1, "u", "D")]
    r = prequential(events, CATALOG, {"fixed": FixedList(["A", "B", "C", "D"])}, k=2, list_length=4)["fixed"]
    assert r.hr == 0.0
    assert r.mrr == pytest.approx(1 / 4)
    assert r.list_length == 4


def test_held_list_is_the_one_from_before_the_event() -> None:
    events = [rating(1, "u1", "A"), rating(2, "u2", "A"), rating(3, "u1", "B"), rating(4, "u2", "B")]
    r = prequential(events, CATALOG, {"last": LastLearned()}, k=10)["last"]
    # e1: u1 new, nothing learned yet -> miss.
    # e2: u2 new, list computed now -> [A] (learned from u1) -> hit.
    # e3: u1 holds [A] from after e1; A is in u1's history -> dropped -> miss (ranked after learning: hit).
    # e4: u2 holds [A] from after e2 -> miss (ranked at t before learning it would be [B]: hit).
    assert r.hr == pytest.approx(1 / 4)


def test_only_first_events_about_a_pair_are_evaluation_points_and_searches_are_fed() -> None:
    events: list[UserEvent] = [
        Search("s1", "u", "alpha", 500),
        Play("p1", "u", "A", 600.0, 1_000),
        Rating("r1", "u", "A", 5.0, 1_000),  # same pair: not an evaluation point
        Search("s2", "u", "gamma", 1_500),
        Play("p2", "u", "C", 600.0, 2_000),
    ]
    system = FixedList(["A", "B", "C", "D"])
    r = prequential(events, CATALOG, {"fixed": system}, k=1)["fixed"]
    assert len(system.learned) == 5
    assert r.eval_points == 2
    assert r.events == 5
    # p1: u's list after the search is [A] -> hit; p2: list after s2 is [B] -> miss
    assert r.hr == pytest.approx(1 / 2)


def test_miscalibration_by_hand() -> None:
    # u watched A (Action); the held list after that is [B] (Action 1/2, Comedy 1/2)
    events = [rating(1, "u", "A"), rating(2, "u", "D")]
    r = prequential(events, CATALOG, {"fixed": FixedList(["A", "B", "C", "D"])}, k=1)["fixed"]
    # first point: u has no history -> not counted. Second: p = {Action: 1}, q = {Action: .5, Comedy: .5}
    expected = 1.0 * math.log(1.0 / (0.99 * 0.5 + 0.01 * 1.0))
    assert r.miscalibration_points == 1
    assert r.miscalibration == pytest.approx(expected)


def test_systems_holding_the_same_list_get_the_same_miscalibration() -> None:
    events = [rating(1, "u", "A"), rating(2, "u", "C"), rating(3, "u", "D"), rating(4, "v", "B")]
    results = prequential(events, CATALOG, {"x": FixedList(["B", "D"]), "y": FixedList(["B", "D"])}, k=1)
    alone = prequential(events, CATALOG, {"x": FixedList(["B", "D"])}, k=1)["x"]
    assert results["x"].miscalibration == results["y"].miscalibration == alone.miscalibration is not None
    assert results["x"].miscalibration_points == alone.miscalibration_points == 2


def test_list_genre_mixes_are_memoised_until_an_items_genres_change() -> None:
    truth = GroundTruth(CATALOG)
    first = truth.cached_list_mix(("A", "B"))
    assert first == truth.list_genre_mix(["A", "B"]) == {"Action": 0.75, "Comedy": 0.25}
    assert truth.cached_list_mix(("A", "B")) is first
    truth.add_item(CatalogItem("A", "Alpha", ("Drama",)), 5_000)
    assert truth.cached_list_mix(("A", "B")) == {"Drama": 0.5, "Action": 0.25, "Comedy": 0.25}


def test_popularity_reasons_verified_and_a_false_reason_is_caught() -> None:
    events = [rating(n, f"u{n % 3}", item) for n, item in enumerate("ABACDBCA", start=1)]
    liar = FixedList(["A", "B", "C", "D"], (Reason("watched", "because you watched Delta", {"item_id": "D"}),))
    results = prequential(events, CATALOG, {"popularity": IncrementalPopularity(), "liar": liar}, k=2)
    assert results["popularity"].reasons_true == 1.0
    assert results["popularity"].reason_kinds["popular"][0] == results["popularity"].reason_kinds["popular"][1]
    assert results["liar"].reasons_true < 1.0
    good, given = results["liar"].reason_kinds["watched"]
    assert given == results["liar"].recommended_items and good < given


def test_items_without_reasons_and_unknown_kinds_are_not_verified() -> None:
    events = [rating(1, "u", "A"), rating(2, "u", "B")]
    silent = prequential(events, CATALOG, {"s": FixedList(["A", "B"])}, k=1)["s"]
    assert silent.reasons_true == 0.0 and silent.recommended_items == 2
    odd = FixedList(["A", "B"], (Reason("vibes", "trust me"),))
    assert prequential(events, CATALOG, {"o": odd}, k=1)["o"].reasons_true == 0.0


def test_hr_over_time_and_progress() -> None:
    events = [rating(n, f"u{n % 5}", "ABCD"[n % 4]) for n in range(1, 41)]
    seen: list[ProgressInfo] = []
    r = prequential(
        events,
        CATALOG,
        {"pop": IncrementalPopularity()},
        k=2,
        on_progress=seen.append,
        sample_every=10,
        progress_every=10,
    )["pop"]
    assert [p.events for p in r.hr_over_time] == [10, 20, 30, 40]
    assert r.hr_over_time[-1].cumulative == pytest.approx(r.hr)
    assert all(0.0 <= p.rolling <= 1.0 for p in r.hr_over_time)
    assert seen[-1].events == 40 and seen[-1].total == 40
    assert set(seen[-1].hit_rates) == {"pop"}


def test_catalog_items_in_the_stream_are_added_and_new_reasons_checked() -> None:
    new_item = CatalogItem("E", "Epsilon", ("Drama",))
    new_reason = (Reason("new", "new this week", {"days": "7"}),)
    late = 30 * DAY_MS
    events: list[UserEvent | CatalogItem] = [
        rating(1, "u", "A", ts=0),
        rating(2, "v", "A", ts=late),
        new_item,
        rating(3, "u", "B", ts=late + 1),
        rating(4, "w", "C", ts=late + 2),
    ]
    system = FixedList(["E", "D"], new_reason)
    r = prequential(events, CATALOG, {"n": system}, k=1)["n"]
    # Every held top-1 list is [E] with "new within 7 days". u's first list (ts 0) and v's (stream time still
    # 0) are from before E existed: false. u's list held from ts 0 is checked as of ts 0: false. w's list is
    # computed 1 ms after E was added (at the stream time of 30 days): true.
    assert r.recommended_items == 4
    assert r.reasons_true == pytest.approx(1 / 4)
    assert r.coverage == pytest.approx(1 / 5)  # E out of a 5-item catalog


# -- verify_reasons, kind by kind -------------------------------------------------------------------------------


@pytest.fixture
def truth() -> GroundTruth:
    t = GroundTruth(CATALOG)
    t.observe(Rating("1", "u", "A", 4.0, 0))
    t.observe(Search("2", "u", "  Funny  FILMS ", 1_000))
    t.observe(Rating("3", "v", "C", 4.0, 5 * DAY_MS))
    t.observe(Rating("4", "w", "C", 4.0, 9 * DAY_MS))
    return t


def rec(item: str, *reasons: Reason) -> Recommendation:
    return Recommendation(item, 1, 1.0, reasons)


def check(truth: GroundTruth, item: str, reason: Reason, now: int = 10 * DAY_MS, as_of: int | None = None) -> bool:
    return verify_reasons([rec(item, reason)], "u", truth, now, as_of)[0]


def test_verify_watched_search_creator_genre(truth: GroundTruth) -> None:
    assert check(truth, "C", Reason("watched", "", {"item_id": "A"}))
    assert not check(truth, "C", Reason("watched", "", {"item_id": "B"}))
    assert not check(truth, "C", Reason("watched", ""))
    assert check(truth, "B", Reason("search", "", {"query": "funny films"}))
    assert not check(truth, "B", Reason("search", "", {"query": "sad films"}))
    assert check(truth, "C", Reason("creator", "", {"item_id": "A", "creator": "ann"}))
    assert not check(truth, "C", Reason("creator", "", {"item_id": "A", "creator": "bob"}))
    assert not check(truth, "B", Reason("creator", "", {"item_id": "A", "creator": "ann"}))  # B is bob's
    assert not check(truth, "C", Reason("creator", "", {"item_id": "D", "creator": "ann"}))  # D not watched
    assert check(truth, "B", Reason("genre", "", {"genre": "Action"}))
    assert not check(truth, "B", Reason("genre", "", {"genre": "Comedy"}))  # not in u's history
    assert not check(truth, "D", Reason("genre", "", {"genre": "Action"}))  # not a genre of D


def test_verify_popular_and_trending_counts(truth: GroundTruth) -> None:
    assert check(truth, "C", Reason("popular", "", {"count": "2"}))
    assert not check(truth, "C", Reason("popular", "", {"count": "3"}))
    assert check(truth, "C", Reason("popular", "", {"count": "1"}), as_of=2)  # as of the 2nd interaction
    assert not check(truth, "C", Reason("popular", "", {"count": "many"}))
    # at day 10, a 7-day window holds both C interactions (days 5 and 9); a 3-day window only day 9's
    assert check(truth, "C", Reason("trending", "", {"count": "2", "window_days": "7"}))
    assert check(truth, "C", Reason("trending", "", {"count": "1", "window_days": "3"}))
    assert not check(truth, "C", Reason("trending", "", {"count": "2", "window_days": "3"}))
    assert not check(truth, "C", Reason("trending", "", {"count": "2"}))  # window missing
    # the window boundary: the day-5 interaction is exactly 5 days before day 10: (now-5d, now] or [now-5d, now]
    assert check(truth, "C", Reason("trending", "", {"count": "1", "window_days": "5"}))
    assert check(truth, "C", Reason("trending", "", {"count": "2", "window_days": "5"}))


def test_verify_new_and_unknown(truth: GroundTruth) -> None:
    truth.add_item(CatalogItem("E", "Epsilon"), 8 * DAY_MS)
    assert check(truth, "E", Reason("new", "", {"days": "2"}))
    assert not check(truth, "E", Reason("new", "", {"days": "1"}))
    assert not check(truth, "A", Reason("new", "", {"days": "7"}))  # initial catalog: added at ts 0
    assert check(truth, "A", Reason("new", "", {"days": "10"}))
    assert not check(truth, "Z", Reason("new", "", {"days": "100"}))
    assert not check(truth, "A", Reason("mystery", "", {}))
    assert verify_reasons([rec("A")], "u", truth, 0) == [False]
    both = rec("C", Reason("watched", "", {"item_id": "A"}), Reason("popular", "", {"count": "9"}))
    assert verify_reasons([both], "u", truth, 10 * DAY_MS) == [False]  # one false reason is enough


def test_skipping_lists_that_are_never_consulted_changes_nothing() -> None:
    events: list[UserEvent] = []
    for n in range(60):
        user, item, ts = f"u{n % 4}", "ABCD"[(n * 7) % 4], n * 1_000
        events.append(Play(f"p{n}", user, item, 60.0, ts))
        events.append(Rating(f"r{n}", user, item, 3.0, ts))
        if n % 5 == 0:
            events.append(Search(f"s{n}", user, "alpha", ts))

    def run(skip: bool) -> dict[str, tuple[float, float, float, float | None, float, int]]:
        systems: dict[str, Recommender] = {"pop": IncrementalPopularity(), "last": LastLearned()}
        results = prequential(events, CATALOG, systems, k=2, list_length=3, skip_unused_lists=skip)
        return {
            name: (r.hr, r.mrr, r.coverage, r.miscalibration, r.reasons_true, r.lists) for name, r in results.items()
        }

    skipped, full = run(True), run(False)
    for name in ("pop", "last"):
        assert skipped[name][:5] == full[name][:5]
        assert skipped[name][5] < full[name][5]
