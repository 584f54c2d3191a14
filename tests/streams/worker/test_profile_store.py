"""The recommender's profile store: the stored profiles outside a batch, a live overlay inside one."""

from __future__ import annotations

import pytest

from streamrec.models.profile import EncodedProfiles, UserProfile
from streamrec.models.recommender import StreamRecommender
from streamrec.streams.worker.profile_store import ProfileStore


def _profile(user: str, events: int) -> UserProfile:
    profile = UserProfile.new(user, 4)
    profile.n_events = events
    return profile


def test_a_batch_reads_each_profile_once_and_writes_each_changed_one_once() -> None:
    stored = EncodedProfiles()
    stored["u1"] = _profile("u1", 1)
    store = ProfileStore(stored)
    store.begin()
    live = store["u1"]
    assert store["u1"] is live and store.holds("u1") and not store.holds("u2")
    live.n_events = 2
    store["u1"] = live
    store["u2"] = _profile("u2", 1)
    assert stored["u1"].n_events == 1 and "u2" not in stored  # nothing written before the flush
    order: list[str] = []

    class Noting:
        def __init__(self, user: str) -> None:
            order.append(user)

        def __enter__(self) -> None:
            return None

        def __exit__(self, *exc: object) -> None:
            return None

    assert store.flush(around=Noting) == ["u1", "u2"] and order == ["u1", "u2"]
    assert stored["u1"].n_events == 2 and stored["u2"].n_events == 1
    assert store["u1"] is not live  # outside a batch: read from the stored bytes


def test_writes_outside_a_batch_are_refused_and_a_dropped_batch_writes_nothing() -> None:
    stored = EncodedProfiles()
    store = ProfileStore(stored)
    with pytest.raises(RuntimeError, match="inside a batch"):
        store["u1"] = _profile("u1", 1)
    store.begin()
    store["u1"] = _profile("u1", 1)
    store.drop()
    assert "u1" not in store and len(stored) == 0 and store.flush() == []


def test_the_recommender_learns_through_the_store_in_a_learning_batch() -> None:
    store = ProfileStore(EncodedProfiles())
    recommender = StreamRecommender(profiles=store)
    store.begin()
    with recommender.learning_batch():  # refused for an EncodedProfiles: the store is live inside a batch
        pass
    assert store.flush() == []
