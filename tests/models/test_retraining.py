"""streamrec with its item model retrained as it runs (`RetrainedLoop`): when the model is retrained, on what
(never an event after the swap), and that the swapped-in model is the one the lists are ranked with."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest

from streamrec.models.evaluate import prequential
from streamrec.models.evaluate.retraining import Interaction, RetrainedLoop, confidence
from streamrec.models.events import CatalogItem, Play, Rating, Search, UserEvent
from streamrec.models.item_model import ItemModel, content_only_model
from streamrec.models.params import StreamParams
from streamrec.models.recommender import StreamRecommender


def synthetic_stream(items: Sequence[CatalogItem], seed: int, events: int) -> list[UserEvent]:
    """Ratings, plays and searches by a few viewers, some delivered twice."""
    rng = random.Random(seed)
    stream: list[UserEvent] = []
    for n in range(events):
        user, item, ts = f"u{rng.randrange(8)}", rng.choice(items).item_id, 60_000 * n
        draw = rng.random()
        if draw < 0.1:
            stream.append(Search(f"e{n}", user, "alien", ts))
        elif draw < 0.55:
            stream.append(Rating(f"e{n}", user, item, float(rng.randint(1, 5)), ts))
        else:
            stream.append(Play(f"e{n}", user, item, 600.0, ts))
        if rng.random() < 0.05:
            stream.append(stream[-1])  # delivered twice: the second is a duplicate
    return stream


class RecordingTrainer:
    """Remembers what each training saw; returns a model named after the count."""

    def __init__(self) -> None:
        self.seen: list[list[Interaction]] = []

    def __call__(self, interactions: Sequence[Interaction]) -> ItemModel:
        self.seen.append(list(interactions))
        model = content_only_model()
        return ItemModel(f"model-{len(interactions)}", model.item_ids, model.factors, len(interactions), 0)


def test_confidence() -> None:
    assert confidence(Rating("e", "u", "1", 4.0, 0)) == 4.0
    assert confidence(Play("e", "u", "1", 30.0, 0)) == 1.0


def test_retrained_every_n_interactions_on_the_interactions_before(items: list[CatalogItem]) -> None:
    trainer = RecordingTrainer()
    loop = RetrainedLoop(StreamRecommender(StreamParams()), 3, trainer)
    for item in items:
        loop.add_item(item)
    stream: list[UserEvent] = [
        Rating("a", "u1", "1", 5.0, 1),
        Search("b", "u1", "alien", 2),  # not an interaction
        Play("c", "u2", "4", 60.0, 3),
        Play("c", "u2", "4", 60.0, 3),  # a duplicate: not learnt, not counted
        Rating("d", "u2", "5", 2.0, 4),  # the third interaction: retrained on the three, swapped in
        Play("e", "u1", "8", 30.0, 5),
    ]
    versions = []
    for event in stream:
        loop.learn_one(event)
        versions.append(loop.recommender.item_model.version)
    assert trainer.seen == [[("u1", "1", 5.0), ("u2", "4", 1.0), ("u2", "5", 2.0)]]
    assert versions == ["content-only"] * 4 + ["model-3"] * 2
    assert loop.swaps == 1


def test_the_deployed_loop_trains_on_the_past_only(items: list[CatalogItem]) -> None:
    """Every training set is a prefix of the stream's interactions, as long as the swap point: no event after
    the swap is in it."""
    trainer = RecordingTrainer()
    stream = synthetic_stream(items, seed=3, events=200)
    loop = RetrainedLoop(StreamRecommender(StreamParams()), 40, trainer)
    prequential(stream, items, {"loop": loop}, k=5)
    learnt = loop.interactions
    assert len(trainer.seen) == len(learnt) // 40 >= 3
    for n, seen in enumerate(trainer.seen, start=1):
        assert seen == learnt[: 40 * n]


def test_the_swapped_in_model_ranks(items: list[CatalogItem]) -> None:
    """With the real trainer (ALS and a co-occurrence snapshot) the loop swaps real models in and ranks with them."""
    stream = synthetic_stream(items, seed=5, events=150)
    loop = RetrainedLoop(StreamRecommender(StreamParams()), 50)
    results = prequential(stream, items, {"loop": loop}, k=5)
    assert loop.swaps == len(loop.interactions) // 50 >= 2
    assert loop.recommender.item_model.version.startswith("als-")
    assert loop.recommender.item_model.trained_on == 50 * loop.swaps
    assert results["loop"].eval_points > 0
    assert loop.rank("u0", 5)


def test_retrain_period_must_be_positive() -> None:
    with pytest.raises(ValueError, match=">= 1"):
        RetrainedLoop(StreamRecommender(StreamParams()), 0)
