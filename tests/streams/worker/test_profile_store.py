"""The recommender's profile store: the stored profiles outside a batch, a live overlay inside one."""

from __future__ import annotations

from collections.abc import Sequence

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


class BatchedStore(EncodedProfiles):
    """An `EncodedProfiles` that takes a batch's writes at once, as the worker's table does."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[tuple[str, bytes | None, int]]] = []

    def write_batch(self, changes: Sequence[tuple[str, bytes | None, int]]) -> None:
        self.batches.append(list(changes))
        for user_id, raw, _ in changes:
            if raw is None:
                self.backing.pop(user_id.encode(), None)
            else:
                self.backing[user_id.encode()] = raw


def _learn(store: ProfileStore, user: str) -> UserProfile:
    profile = store.get(user) or _profile(user, 0)
    profile.n_events += 1
    store[user] = profile
    return profile


def test_a_profile_written_by_a_batch_is_taken_by_the_next_while_the_store_holds_its_bytes() -> None:
    stored = BatchedStore()
    store = ProfileStore(stored, decoded=10)
    store.begin()
    first = _learn(store, "u1")
    assert store.flush(partition_of=lambda _: 3) == ["u1"]
    assert stored.batches == [[("u1", first.to_bytes(), 3)]]

    store.begin()
    assert store["u1"] is first  # the same bytes: not decoded again
    _learn(store, "u1")
    store.flush(partition_of=lambda _: 3)
    assert stored["u1"].n_events == 2

    # The store changed behind the worker (another worker's write after a rebalance, a restore): decoded afresh.
    elsewhere = _profile("u1", 7)
    stored.backing[b"u1"] = elsewhere.to_bytes()
    store.begin()
    fresh = store["u1"]
    assert fresh is not first and fresh.n_events == 7
    store.drop()


def test_nothing_an_unfinished_batch_read_is_kept_decoded() -> None:
    stored = BatchedStore()
    store = ProfileStore(stored, decoded=10)
    store.begin()
    kept = _learn(store, "u1")
    store.flush(partition_of=lambda _: 0)

    store.begin()
    changed = _learn(store, "u1")  # changed in place, then the batch fails
    assert changed is kept and changed.n_events == 2
    store.drop()
    store.begin()
    again = store["u1"]
    assert again is not kept and again.n_events == 1  # the stored bytes, not the object the failed batch changed

    _learn(store, "u1")
    store.begin()  # a batch begun over an unfinished one drops it, and what it read
    assert store["u1"].n_events == 1
    store.drop()


def test_only_the_most_recently_written_profiles_stay_decoded() -> None:
    stored = BatchedStore()
    store = ProfileStore(stored, decoded=2)
    store.begin()
    written = {user: _learn(store, user) for user in ("u1", "u2", "u3")}
    store.flush(partition_of=lambda _: 0)
    assert store.decoded is not None and len(store.decoded) == 2
    store.begin()
    assert store["u1"] is not written["u1"]  # the least recently written: decoded again
    assert store["u2"] is written["u2"] and store["u3"] is written["u3"]
    store.drop()
