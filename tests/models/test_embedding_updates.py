"""A batch's embedding updates applied together are bit for bit those applied event by event."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamrec.models.embedding_updates import EmbeddingUpdates
from streamrec.models.events import CatalogItem, Play, Rating, Search, UserEvent
from streamrec.models.profile import EncodedProfiles, UserProfile, quantized
from streamrec.models.recommender import StreamParams, StreamRecommender


class Holder:
    def __init__(self, embedding: np.ndarray) -> None:
        self.embedding = embedding


updates = st.lists(st.tuples(st.integers(0, 5), st.integers(0, 9), st.floats(-3.0, 3.0, allow_nan=False)), max_size=60)


@settings(max_examples=200, deadline=None)
@given(ops=updates, decay=st.floats(0.5, 1.0), seed=st.integers(0, 2**16), stepwise_max=st.sampled_from([0, 60]))
def test_queued_updates_equal_event_by_event_updates(
    ops: list[tuple[int, int, float]], decay: float, seed: int, stepwise_max: int
) -> None:
    """Either way the queue is applied: in waves (`stepwise_max` 0) or update by update (every queue here)."""
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(10, 7)).astype(np.float32)
    start = [quantized(rng.normal(size=7).astype(np.float32)) for _ in range(6)]
    one_by_one = [Holder(e.copy()) for e in start]
    together = [Holder(e.copy()) for e in start]
    queue = EmbeddingUpdates(decay, stepwise_max)
    for who, row, weight in ops:
        e = one_by_one[who]
        e.embedding *= decay  # what learn_one does, step by step
        e.embedding += weight * vectors[row]
        e.embedding = quantized(e.embedding)
        queue.add(together[who], vectors, row, weight)
    assert len(queue) == len(ops)
    queue.apply()
    assert len(queue) == 0
    for a, b in zip(one_by_one, together, strict=True):
        assert a.embedding.dtype == b.embedding.dtype == np.float32
        assert a.embedding.tobytes() == b.embedding.tobytes()


def test_new_vectors_apply_what_was_queued_with_the_old_ones() -> None:
    old = np.ones((2, 3), dtype=np.float32)
    new = np.full((2, 3), 10.0, dtype=np.float32)
    holder = Holder(np.zeros(3, dtype=np.float32))
    queue = EmbeddingUpdates(0.5)
    queue.add(holder, old, 0, 1.0)
    queue.add(holder, new, 1, 1.0)  # the catalog changed in between: the first update is applied at once
    assert len(queue) == 1
    assert holder.embedding.tolist() == [1.0, 1.0, 1.0]
    queue.apply()
    assert holder.embedding.tolist() == [10.5, 10.5, 10.5]


def _events(items: list[CatalogItem], draws: list[tuple[int, int, int, float]]) -> list[UserEvent]:
    events: list[UserEvent] = []
    for n, (kind, user, item, x) in enumerate(draws):
        item_id = items[item % len(items)].item_id
        ts = 1_000_000 + n * 1_000
        event_id = f"e{n // 2 if kind == 3 else n}"  # kind 3: a duplicate of the one before (most of the time)
        if kind == 0:
            events.append(Rating(event_id, f"u{user}", item_id, 0.5 + round(x * 9) / 2, ts))
        elif kind == 1:
            events.append(Play(event_id, f"u{user}", item_id, x * 9_000.0, ts, completed=x > 0.9))
        elif kind == 2:
            events.append(Search(event_id, f"u{user}", "star wars" if x > 0.5 else "comedy", ts))
        else:
            events.append(Rating(event_id, f"u{user}", item_id, 4.0, ts))
    return events


def _system(items: list[CatalogItem]) -> StreamRecommender:
    system = StreamRecommender(StreamParams(top_n=5))
    system.add_items([(item, 0) for item in items])
    return system


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])  # read only
@given(
    draws=st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 4), st.integers(0, 20), st.floats(0.0, 1.0)),
        min_size=1,
        max_size=80,
    ),
    split=st.integers(0, 80),
)
def test_learning_a_batch_gives_the_profiles_and_lists_of_learning_event_by_event(
    items: list[CatalogItem], draws: list[tuple[int, int, int, float]], split: int
) -> None:
    events = _events(items, draws)
    one_by_one, batched = _system(items), _system(items)
    learned = [one_by_one.learn_one(e) for e in events]
    with batched.learning_batch():
        # part of the batch, a list read in the middle of it (applies the queue), then the rest
        got = [batched.learn_one(e) for e in events[:split]]
        middle = batched.rank("u0")
        got += [batched.learn_one(e) for e in events[split:]]
    assert got == learned
    assert set(batched.profiles) == set(one_by_one.profiles)
    for user, profile in one_by_one.profiles.items():
        assert batched.profiles[user].to_bytes() == profile.to_bytes()
        assert batched.profiles[user].embedding.tobytes() == profile.embedding.tobytes()
    reference = _system(items)
    for e in events[:split]:
        reference.learn_one(e)
    assert [r.item_id for r in middle] == [r.item_id for r in reference.rank("u0")]
    assert [r.item_id for r in batched.rank("u1")] == [r.item_id for r in one_by_one.rank("u1")]


def test_an_item_added_in_the_middle_of_a_batch(items: list[CatalogItem]) -> None:
    """New catalog rows mean a new item-vector matrix: updates queued before it use the vectors of their time."""
    new = CatalogItem("new", "A New Hope Returns", ("Sci-Fi",), ("lucas",), 7000, 2026)
    events_before: list[UserEvent] = [
        Rating(f"b{n}", f"u{n % 3}", item.item_id, 4.5, 1_000 + n) for n, item in enumerate(items)
    ]
    events_after: list[UserEvent] = [Play(f"a{n}", f"u{n % 3}", "new", 6_000.0, 5_000 + n) for n in range(3)]
    one_by_one, batched = _system(items), _system(items)
    for e in events_before:
        one_by_one.learn_one(e)
    one_by_one.add_item(new)
    for e in events_after:
        one_by_one.learn_one(e)
    with batched.learning_batch():
        for e in events_before:
            batched.learn_one(e)
        batched.add_item(new)
        for e in events_after:
            batched.learn_one(e)
    for user, profile in one_by_one.profiles.items():
        assert batched.profiles[user].to_bytes() == profile.to_bytes()


def test_a_store_that_encodes_every_write_is_refused(items: list[CatalogItem]) -> None:
    system = _system(items)
    system.profiles = EncodedProfiles()
    with pytest.raises(TypeError, match="live profiles"), system.learning_batch():
        pass
    assert isinstance(UserProfile.new("u", 3).embedding, np.ndarray)
