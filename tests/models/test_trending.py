"""Trending: exponential decay by event time, order independence, exclusion of watched items, and reasons that
state the exact interaction count of the window (else the popularity count)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamrec.models.evaluate import GroundTruth, verify_reasons
from streamrec.models.events import DAY_MS, CatalogItem, Play, Rating, Search
from streamrec.models.trending import Trending, trending_reason

ITEMS = [CatalogItem(name, f"Film {name}") for name in "ABCDEF"]


def fresh(**kwargs: int) -> Trending:
    system = Trending(**kwargs)
    for item in ITEMS:
        system.add_item(item)
    return system


def play(n: int, user: str, item: str, ts: int) -> Play:
    return Play(f"e{n}", user, item, 60.0, ts)


def test_scores_halve_every_half_life() -> None:
    system = fresh()
    system.learn_one(play(1, "u1", "A", 0))
    system.learn_one(play(2, "u2", "A", 0))
    system.learn_one(play(3, "u3", "B", 2 * DAY_MS))
    scores = system.scores()
    assert scores[0] == pytest.approx(2 * 0.25) and scores[1] == 1.0  # A: two plays two half-lives ago
    assert [r.item_id for r in system.rank("u9", 3)] == ["B", "A", "C"]
    system.learn_one(Search("s", "u1", "film", 3 * DAY_MS))  # the clock moves with every event
    assert system.scores()[:2] == pytest.approx([2 * 0.125, 0.5])


def test_recent_interactions_outrank_older_more_numerous_ones() -> None:
    system = fresh(half_life_ms=DAY_MS)
    for n, user in enumerate(["u1", "u2", "u3"]):
        system.learn_one(play(n, user, "A", 0))
    for n, user in enumerate(["u4", "u5"], start=3):
        system.learn_one(play(n, user, "B", 3 * DAY_MS))
    assert [r.item_id for r in system.rank("u9", 2)] == ["B", "A"]  # 2 > 3 / 8


def test_the_order_events_arrive_in_does_not_change_the_scores() -> None:
    stamps = [0, 5 * DAY_MS // 4, DAY_MS // 3, 2 * DAY_MS]
    in_order, shuffled = fresh(), fresh()
    for n, ts in enumerate(sorted(stamps)):
        in_order.learn_one(play(n, f"u{n}", "A", ts))
    for n, ts in enumerate(stamps):
        shuffled.learn_one(play(n, f"u{n}", "A", ts))
    expected = sum(2.0 ** ((ts - 2 * DAY_MS) / DAY_MS) for ts in stamps)
    assert in_order.scores()[0] == pytest.approx(expected) and shuffled.scores()[0] == pytest.approx(expected)


def test_reasons_state_the_window_count_or_the_popularity_count() -> None:
    system = fresh()
    system.learn_one(play(1, "u1", "A", 0))
    system.learn_one(play(2, "u2", "B", DAY_MS))
    system.learn_one(play(3, "u3", "B", 2 * DAY_MS))
    recs = {r.item_id: r for r in system.rank("u9", 3)}
    # at 2 days: B's plays at 1 day (on the window's open edge) and 2 days -> 1 in (1 day, 2 days]; A: none
    assert recs["B"].reasons == (trending_reason(1, DAY_MS, 2 * DAY_MS),)
    assert recs["B"].reasons[0].text == "Trending: 1 view in the last day"
    assert recs["B"].reasons[0].evidence == {"count": "1", "window_days": "1", "as_of": str(2 * DAY_MS)}
    assert recs["A"].reasons[0].kind == "popular" and recs["A"].reasons[0].evidence == {"count": "1"}
    assert recs["C"].reasons[0].evidence == {"count": "0"}
    assert trending_reason(3, 7 * DAY_MS, 0).text == "Trending: 3 views in the last 7 days"


def test_watched_items_are_excluded_and_repeats_count_once() -> None:
    system = fresh()
    system.learn_one(play(1, "u1", "A", 0))
    system.learn_one(Rating("r1", "u1", "A", 5.0, 1))  # the same pair again: not a new interaction
    assert not system.learn_one(play(1, "u2", "A", 2))  # a duplicate id
    assert system.counts[0] == 1 and system.scores()[0] == pytest.approx(2.0 ** (-1 / DAY_MS))  # clock: 1 ms
    ids = [r.item_id for r in system.rank("u1", 10)]
    assert "A" not in ids and len(ids) == len(ITEMS) - 1


def test_rejects_a_non_positive_half_life() -> None:
    with pytest.raises(ValueError, match="half_life_ms"):
        Trending(half_life_ms=0)


events_strategy = st.lists(
    st.tuples(
        st.sampled_from(["u1", "u2", "u3"]),
        st.sampled_from([i.item_id for i in ITEMS]),
        st.integers(0, 2 * DAY_MS),  # time since the previous event
    ),
    min_size=1,
    max_size=50,
)


@settings(max_examples=60, deadline=None)
@given(events_strategy, st.integers(1, 8))
def test_every_reason_is_true_and_no_watched_item_is_listed(events: list[tuple[str, str, int]], n: int) -> None:
    system, truth = fresh(), GroundTruth(ITEMS)
    ts = 0
    for k, (user, item, gap) in enumerate(events):
        ts += gap
        event = play(k, user, item, ts)
        truth.observe(event)
        system.learn_one(event)
        for viewer in (user, "u1"):
            recs = system.rank(viewer, n)
            ids = [r.item_id for r in recs]
            assert len(ids) == min(n, len(ITEMS) - len(truth.history(viewer)))
            assert not set(ids) & truth.history(viewer)
            assert all(verify_reasons(recs, viewer, truth, truth.clock(ts), truth.seq))
            assert all(math.isfinite(r.score) for r in recs)
            assert [r.score for r in recs] == sorted((r.score for r in recs), reverse=True)
