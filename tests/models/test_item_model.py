from __future__ import annotations

import numpy as np
import pytest

from streamrec.models.events import CatalogItem, Rating
from streamrec.models.item_model import ItemModel, aligned, content_only_model, train_item_model
from streamrec.models.recommender import StreamParams, StreamRecommender


def _stream(n_users: int = 30, n_items: int = 12, per_user: int = 6) -> list[Rating]:
    rng = np.random.default_rng(5)
    events = []
    for u in range(n_users):
        for pos, item in enumerate(rng.choice(n_items, per_user, replace=False)):
            events.append(Rating(f"{u}-{pos}", f"u{u}", str(item + 1), float(rng.integers(1, 6)), 1000 * pos + u))
    return sorted(events, key=lambda e: e.ts)


def test_artifact_round_trips_through_bytes(items: list[CatalogItem]) -> None:
    model = train_item_model(((e.user_id, e.item_id, e.rating) for e in _stream()), factors=4, iterations=3)
    back = ItemModel.from_bytes(model.to_bytes())
    assert back.version == model.version and back.item_ids == model.item_ids
    np.testing.assert_allclose(back.factors, model.factors)
    np.testing.assert_array_equal(back.neighbours, model.neighbours)
    np.testing.assert_allclose(np.linalg.norm(back.factors, axis=1), 1.0, rtol=1e-5)


def test_no_interactions_gives_the_content_only_model() -> None:
    assert train_item_model([]).version == content_only_model().version


def test_a_worker_seeded_from_the_artifact_starts_with_the_online_counts(items: list[CatalogItem]) -> None:
    stream = _stream()
    online = StreamRecommender(StreamParams())
    seeded = StreamRecommender(StreamParams())
    for item in items:
        online.add_item(item)
        seeded.add_item(item)
    for event in stream:
        online.learn_one(event)
    model = train_item_model(((e.user_id, e.item_id, e.rating) for e in stream), factors=4, iterations=3)
    seeded.set_item_model(model)
    n = len(items)
    np.testing.assert_array_equal(seeded.cooccurrence.counts[:n, :n], online.cooccurrence.counts[:n, :n])
    np.testing.assert_array_equal(seeded.cooccurrence.item_counts[:n], online.cooccurrence.item_counts[:n])
    # seeding again (a newer artifact over the same history) must not double-count
    seeded.set_item_model(model)
    np.testing.assert_array_equal(seeded.cooccurrence.counts[:n, :n], online.cooccurrence.counts[:n, :n])


def test_item_vectors_carry_als_factors_for_trained_items(items: list[CatalogItem]) -> None:
    model = train_item_model(((e.user_id, e.item_id, e.rating) for e in _stream()), factors=4, iterations=3)
    system = StreamRecommender(item_model=model)
    for item in items:
        system.add_item(item)
    row = system.catalog.row_of[model.item_ids[0]]
    np.testing.assert_allclose(system.item_vectors[row, :4], model.factors[0])


@pytest.mark.parametrize("in_one_batch", [False, True], ids=["one by one", "in one batch"])
def test_seeding_also_works_when_the_artifact_arrives_before_the_catalog(
    items: list[CatalogItem], in_one_batch: bool
) -> None:
    stream = _stream()
    online = StreamRecommender(StreamParams())
    for item in items:
        online.add_item(item)
    for event in stream:
        online.learn_one(event)
    model = train_item_model(((e.user_id, e.item_id, e.rating) for e in stream), factors=4, iterations=3)
    early = StreamRecommender(item_model=model)
    if in_one_batch:  # as a worker's start reads the catalog
        early.add_items([(item, 0) for item in items])
    else:
        for item in items:
            early.add_item(item)
    n = len(items)
    np.testing.assert_array_equal(early.cooccurrence.counts[:n, :n], online.cooccurrence.counts[:n, :n])


def test_a_retrained_model_is_turned_onto_the_one_before() -> None:
    """A model turned at random (as a retraining turns it) is turned back onto the one before; only shared items
    decide the turn, and the new model's own geometry (dot products) is unchanged."""
    model = train_item_model(((e.user_id, e.item_id, e.rating) for e in _stream()), factors=4, iterations=3)
    rotation, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(4, 4)))
    turned = ItemModel("turned", model.item_ids, (model.factors @ rotation).astype(np.float32), 0, 0)
    back = aligned(turned, model)
    np.testing.assert_allclose(back.factors, model.factors, atol=1e-5)
    np.testing.assert_allclose(back.factors @ back.factors.T, turned.factors @ turned.factors.T, atol=1e-5)
    assert back.version == "turned" and back.item_ids == model.item_ids
    # a model that shares no item, or has another number of factors, is left as it is
    stranger = ItemModel("s", tuple(f"x{i}" for i in model.item_ids), turned.factors, 0, 0)
    assert aligned(stranger, model) is stranger
    assert aligned(turned, content_only_model()) is turned
