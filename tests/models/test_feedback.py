"""The compiled feedback on the blend (`models/feedback.py`) credits what the definition in `blend.py` says: the
consumed item against the strongest contenders the viewer has not watched, ties counted against the item."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamrec.models.blend import HIT_RANK
from streamrec.models.cooccurrence import Cooccurrence
from streamrec.models.events import CatalogItem, Play, Rating, UserEvent
from streamrec.models.feedback import strongest
from streamrec.models.params import StreamParams
from streamrec.models.profile import UserProfile
from streamrec.models.recommender import CONTENDERS_PER_COMPONENT, StreamRecommender


def reference(system: StreamRecommender, profile: UserProfile, row: int) -> tuple[int, ...]:
    """The feedback spelt out: plain loops, each score summed in the components' order."""
    items, catalog, m = system.item_side, system.catalog, CONTENDERS_PER_COMPONENT
    n = len(catalog)
    history, weights = system._ranker.recent_history(profile)
    sums = np.zeros(n, dtype=np.float32)
    if history is not None:
        cooccurrence = items.cooccurrence
        if isinstance(cooccurrence, Cooccurrence):
            sums = cooccurrence.similarity_sums(history, weights, np.array([0, history.shape[0]]))[0]
        else:
            cooccurrence.accumulate(history, weights, sums)
    positive = sorted((-float(sums[r]), r) for r in range(n) if sums[r] > 0)  # best first, ties by row
    top = -positive[0][0] if positive else 0.0
    candidates = [row, *items.leading_items(m).tolist(), *(r for _, r in positive[:m])]
    pool = [row]
    for r in candidates[1:]:
        if r not in pool and catalog.hashes[r] not in profile.watched and r != row:
            pool.append(r)
    counts, recency = items.cooccurrence.item_counts, items.recency
    popularity_top = float(np.log1p(counts[:n].max(initial=0.0)))
    features = [
        (
            float(sums[r]) / top if top > 0 else 0.0,
            0.0,
            float(np.log1p(counts[r])) / popularity_top if popularity_top > 0 else 0.0,
            float(recency.values[r]) / recency.top if recency.top > 0 else 0.0,
        )
        for r in pool
    ]
    hits = []
    for e, w in enumerate(items.blend.experts.T.tolist()):
        scores = [((f[0] * w[0] + f[1] * w[1]) + f[2] * w[2]) + f[3] * w[3] for f in features]
        if sum(score >= scores[0] for score in scores[1:]) < HIT_RANK:
            hits.append(e)
    return tuple(hits)


def _catalog(n_items: int) -> list[CatalogItem]:
    return [CatalogItem(f"i{k}", f"title {k}", genres=(f"g{k % 5}",), creators=(f"c{k % 7}",)) for k in range(n_items)]


def _events(n_items: int, n_users: int, n_events: int, seed: int) -> list[UserEvent]:
    rng = np.random.default_rng(seed)
    popular = rng.zipf(1.3, n_events) % n_items  # a skewed catalog: ties in popularity and co-occurrence abound
    events: list[UserEvent] = []
    for t in range(n_events):
        user, item, ts = f"u{rng.integers(n_users)}", f"i{popular[t]}", t * 600_000
        if rng.random() < 0.5:
            events.append(Rating(f"e{t}", user, item, float(rng.integers(1, 11)) / 2, ts))
        else:
            events.append(Play(f"e{t}", user, item, float(rng.integers(5, 120)), ts))
    return events


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10_000), n_items=st.integers(12, 90))
def test_compiled_feedback_credits_what_the_definition_says(sparse: bool, seed: int, n_items: int) -> None:
    system = StreamRecommender(StreamParams(exact_max_items=10 if sparse else 8192))
    for item in _catalog(n_items):
        system.add_item(item)
    assert system.item_side.sparse == sparse
    compared = 0
    for event in _events(n_items, 15, 300, seed):
        assert isinstance(event, Rating | Play)
        profile = system.profiles.get(event.user_id)
        row = system.catalog.row_of[event.item_id]
        if profile is not None and system.catalog.hashes[row] not in profile.watched:
            assert system._feedback(profile, row) == reference(system, profile, row)
            compared += 1
        system.learn_one(event)
    assert compared > 50


def test_the_strongest_are_the_best_scores_ties_by_row() -> None:
    sums = np.array([0.0, 0.5, 0.2, 0.5, -1.0, 0.2, 0.9], dtype=np.float32)
    best, top = strongest(sums, np.zeros(0, dtype=np.int64), 4)
    assert best.tolist() == [6, 1, 3, 2] and top == pytest.approx(0.9)
    best, top = strongest(sums, np.array([5, 2, 0, 4], dtype=np.int64), 4)  # only the touched rows
    assert best.tolist() == [2, 5] and top == pytest.approx(0.2)
    assert strongest(np.zeros(3, dtype=np.float32), np.zeros(0, dtype=np.int64), 2)[0].size == 0
