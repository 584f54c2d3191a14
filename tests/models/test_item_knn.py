"""Sequential item-kNN on hand-made streams: distance and recency weights, the popularity normalisation, the
window, exclusion of watched items, the popularity top-up, and reasons naming the item that contributed most."""

from __future__ import annotations

import math
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from streamrec.models.base import Recommendation
from streamrec.models.evaluate import GroundTruth
from streamrec.models.events import DAY_MS, CatalogItem, Play, Rating, Search
from streamrec.models.item_knn import SequentialItemKNN

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: make the helper importable
from feeder import Stream, assert_a_sound_list

ITEMS = [CatalogItem(name, f"Film {name}") for name in "ABCDEFGHIJ"]


def scores(recs: list[Recommendation]) -> dict[str, float]:
    return {rec.item_id: rec.score for rec in recs if rec.reasons[0].kind == "watched"}


def test_followers_of_the_last_item_rank_by_count_and_name_it() -> None:
    stream = Stream(SequentialItemKNN(), ITEMS)
    stream.watch("u1", "A", "B")
    stream.watch("u2", "A", "B")
    stream.watch("u3", "A", "C")
    stream.watch("u4", "A")
    recs = stream.system.rank("u4", 3)
    assert [r.item_id for r in recs] == ["B", "C", "D"]  # D: the popularity top-up (catalog order among zeros)
    pop_a = 4
    assert recs[0].score == 2 / math.sqrt(pop_a) and recs[1].score == 1 / math.sqrt(pop_a)
    for rec in recs[:2]:
        assert rec.reasons[0].kind == "watched"
        assert rec.reasons[0].evidence == {"item_id": "A", "title": "Film A"}
        assert rec.reasons[0].text == "Because you watched Film A"
    assert recs[2].score == 0.0 and recs[2].reasons[0].kind == "popular"
    assert [r.rank for r in recs] == [1, 2, 3]


def test_pairs_count_one_over_distance_and_recent_items_weigh_more() -> None:
    stream = Stream(SequentialItemKNN(), ITEMS)
    stream.watch("u1", "A", "B", "C")  # A->B 1, A->C 1/2, B->C 1
    stream.watch("u2", "A")
    assert scores(stream.system.rank("u2", 5)) == {"B": 1 / math.sqrt(2), "C": 0.5 / math.sqrt(2)}
    # u3 watched D then A: A's followers (d = 1) count fully, D's (d = 2) half
    stream.watch("u4", "D", "E")
    stream.watch("u3", "D", "A")
    got = scores(stream.system.rank("u3", 5))
    pop_a, pop_d = 3, 2
    assert got == {
        "B": 1 / math.sqrt(pop_a),
        "C": 0.5 / math.sqrt(pop_a),
        "E": 0.5 * 1 / math.sqrt(pop_d),
    }


def test_reason_names_the_recent_item_contributing_most() -> None:
    stream = Stream(SequentialItemKNN(), ITEMS)
    stream.watch("u1", "A", "C")
    stream.watch("u2", "B", "C")
    stream.watch("u3", "B", "C")
    stream.watch("v", "A", "B")  # C: from B (d = 1, count 2) more than from A (d = 2, count 1)
    [rec] = stream.system.rank("v", 1)
    assert rec.item_id == "C" and rec.reasons[0].evidence["item_id"] == "B"


def test_only_the_last_window_items_count() -> None:
    stream = Stream(SequentialItemKNN(window=2), ITEMS)
    stream.watch("u1", "A", "B", "C", "D")  # window 2: A->B, A->C, B->C, B->D, C->D; never A->D
    stream.watch("u2", "A")
    assert set(scores(stream.system.rank("u2", 9))) == {"B", "C"}
    stream.watch("u3", "F", "G", "A", "E")
    # u3's last two: E (nothing follows it) and A: F and G are outside the window
    assert set(scores(stream.system.rank("u3", 9))) == {"B", "C"}


def test_watched_items_are_excluded_and_the_list_is_topped_up() -> None:
    stream = Stream(SequentialItemKNN(), ITEMS)
    stream.watch("u1", "A", "B", "C", "D")
    stream.watch("u2", "A", "B")
    recs = stream.system.rank("u2", 20)
    ids = [r.item_id for r in recs]
    assert "A" not in ids and "B" not in ids
    assert len(ids) == len(set(ids)) == len(ITEMS) - 2
    assert ids[:2] == ["C", "D"]
    assert all(r.reasons[0].kind == "popular" for r in recs[2:])


def test_new_viewers_get_popularity_and_repeats_or_searches_change_nothing() -> None:
    system = SequentialItemKNN()
    stream = Stream(system, ITEMS)
    stream.watch("u1", "A", "B")
    assert [r.item_id for r in system.rank("new", 2)] == ["A", "B"]
    before = system.rank("u1", 5)
    assert system.learn_one(Rating("r", "u1", "A", 5.0, 10_000))  # a later event about a watched pair
    assert system.learn_one(Search("s", "u1", "film", 10_001))
    assert not system.learn_one(Rating("r", "u1", "C", 5.0, 10_002))  # a duplicate id
    assert system.rank("u1", 5) == before


def test_an_unknown_item_becomes_rankable() -> None:
    stream = Stream(SequentialItemKNN(), ITEMS)
    stream.watch("u1", "A", "Z")
    stream.watch("u2", "A")
    assert stream.system.rank("u2", 1)[0].item_id == "Z"


events_strategy = st.lists(
    st.tuples(st.sampled_from(["u1", "u2", "u3", "u4"]), st.sampled_from([i.item_id for i in ITEMS]), st.booleans()),
    min_size=1,
    max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(events_strategy, st.integers(1, 12))
def test_lists_hold_no_watched_item_and_every_reason_is_true(events: list[tuple[str, str, bool]], n: int) -> None:
    system, truth = SequentialItemKNN(window=3), GroundTruth(ITEMS)
    for item in ITEMS:
        system.add_item(item)
    for k, (user, item, is_play) in enumerate(events):
        ts = k * DAY_MS // 7
        event = Play(f"e{k}", user, item, 30.0, ts) if is_play else Rating(f"e{k}", user, item, 4.0, ts)
        truth.observe(event)
        system.learn_one(event)
        for viewer in (user, "u1"):
            assert_a_sound_list(system.rank(viewer, n), viewer, n, len(ITEMS), truth, truth.clock(ts))
