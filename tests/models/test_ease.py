"""EASE: the closed form against a direct computation, the refit cadence, viewers' rows current between refits,
exclusion of watched items, and reasons naming the watched item with the largest term of the score."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamrec.models.base import Recommendation
from streamrec.models.ease import EASE, ease_weights
from streamrec.models.evaluate import GroundTruth
from streamrec.models.events import CatalogItem, Play, Rating, Search

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: make the helper importable
from feeder import Stream, assert_a_sound_list

ITEMS = [CatalogItem(name, f"Film {name}") for name in "ABCDEFGH"]


@pytest.mark.parametrize("k", [1, 7, 600, 1100])  # 600 and 1100 span several mirrored row blocks
def test_weights_match_the_closed_form(k: int) -> None:
    rng = np.random.default_rng(k)
    x = (rng.random((3 * k + 5, k)) < 0.3).astype(np.float64)
    gram = x.T @ x
    l2 = 7.0
    p = np.linalg.inv(gram + l2 * np.eye(k))
    expected = np.eye(k) - p / np.diag(p)  # B = I - P diag(1 / diag(P))
    got = ease_weights(gram.astype(np.float32), l2)
    assert got.dtype == np.float32 and got.flags["C_CONTIGUOUS"]
    np.testing.assert_allclose(got, expected, atol=1e-4 * float(np.abs(expected).max()))  # float32
    assert not got.diagonal().any()


def kinds(recs: list[Recommendation]) -> dict[str, str]:
    return {r.item_id: r.reasons[0].kind for r in recs}


def test_refits_every_n_new_interactions_only() -> None:
    system = EASE(every=3, l2=1.0)
    stream = Stream(system, ITEMS)
    stream.watch("u1", "A", "B")
    system.learn_one(Rating("again", "u1", "A", 4.0, 5_000))  # the same pair again: not a new interaction
    system.learn_one(Search("s", "u1", "film", 5_001))
    assert set(kinds(system.rank("u1", 3)).values()) == {"popular"}  # not fitted yet
    stream.watch("v", "A")  # the 3rd interaction: fitted on u1 {A, B}, v {A}
    assert kinds(system.rank("v", 2)) == {"B": "watched", "C": "popular"}
    stream.watch("u2", "A", "C")  # 4th and 5th: C's co-watching with A is not fitted yet
    assert kinds(system.rank("v", 2)) == {"B": "watched", "C": "popular"}
    stream.watch("u3", "D")  # the 6th: fitted again
    assert kinds(system.rank("v", 2)) == {"B": "watched", "C": "watched"}


def test_before_the_first_fit_every_list_is_popularity() -> None:
    system = EASE(every=100)
    stream = Stream(system, ITEMS)
    stream.watch("u1", "A", "B")
    stream.watch("u2", "B")
    recs = system.rank("u2", 3)
    assert [r.item_id for r in recs] == ["A", "C", "D"]
    assert [r.reasons[0].kind for r in recs] == ["popular"] * 3


def test_co_watched_items_rank_first_with_the_item_that_drove_them() -> None:
    system = EASE(every=8, l2=1.0)
    stream = Stream(system, ITEMS)
    stream.watch("u1", "A", "B")
    stream.watch("u2", "A", "B")
    stream.watch("u3", "C", "D")
    stream.watch("u4", "E", "D")  # 8 interactions: fitted
    stream.watch("v", "A")  # after the fit: v's row is current all the same
    recs = system.rank("v", 3)
    assert recs[0].item_id == "B" and recs[0].score > 0
    assert recs[0].reasons[0].evidence == {"item_id": "A", "title": "Film A"}
    assert all(r.score == 0.0 and r.reasons[0].kind == "popular" for r in recs[1:])
    assert "A" not in {r.item_id for r in recs}
    stream.watch("v", "C")  # D now scores through C
    recs = system.rank("v", 2)
    assert {r.item_id for r in recs} == {"B", "D"}
    reasons = {r.item_id: r.reasons[0].evidence["item_id"] for r in recs}
    assert reasons == {"B": "A", "D": "C"}


def test_items_newer_than_the_fit_are_only_topped_up() -> None:
    system = EASE(every=4, l2=1.0)
    stream = Stream(system, ITEMS)
    stream.watch("u1", "A", "B")
    stream.watch("u2", "A", "B")
    stream.watch("u3", "A", "Z")  # Z: not in the catalog, unknown to the fit
    recs = system.rank("u3", 8)
    assert recs[0].item_id == "B" and recs[0].reasons[0].evidence["item_id"] == "A"
    assert "Z" not in {r.item_id for r in recs} and "A" not in {r.item_id for r in recs}


def test_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError, match="every"):
        EASE(every=0)
    with pytest.raises(ValueError, match="l2"):
        EASE(l2=0.0)


events_strategy = st.lists(
    st.tuples(st.sampled_from(["u1", "u2", "u3", "u4"]), st.sampled_from([i.item_id for i in ITEMS])),
    min_size=1,
    max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(events_strategy, st.integers(1, 10), st.integers(1, 6))
def test_every_reason_is_true_and_no_watched_item_is_listed(events: list[tuple[str, str]], n: int, every: int) -> None:
    system, truth = EASE(every=every, l2=2.0), GroundTruth(ITEMS)
    for item in ITEMS:
        system.add_item(item)
    for k, (user, item) in enumerate(events):
        event = Play(f"e{k}", user, item, 30.0, 1_000 * k)
        truth.observe(event)
        system.learn_one(event)
        for viewer in (user, "u1"):
            assert_a_sound_list(system.rank(viewer, n), viewer, n, len(ITEMS), truth, truth.clock(event.ts))
