import math

import numpy as np
import pytest

from streamrec.models.blend import COMPONENTS, HIT_RANK, Blend
from streamrec.models.recency import RecencyCounter

DAY = 86_400_000
PRIOR = (1.0, 0.0, 0.05, 0.05)


def _expert(blend: Blend, popularity: float, recency: float, personal: bool = True) -> int:
    """The grid's blend with these popularity and recency weights, the personal signals on or off."""
    match = (blend.experts[2] == popularity) & (blend.experts[3] == recency) & ((blend.experts[0] > 0) == personal)
    return int(np.flatnonzero(match)[0])


def _all(blend: Blend) -> list[int]:
    return list(range(blend.credit.shape[0]))


def test_weights_start_at_the_prior_and_ties_keep_them() -> None:
    blend = Blend(PRIOR)
    assert blend.weights == PRIOR
    blend.update(_all(blend))  # every blend credited alike
    assert blend.weights == PRIOR
    assert blend.version == 0


def test_the_blend_credited_most_is_used() -> None:
    blend = Blend(PRIOR)
    blend.update([_expert(blend, 1.0, 2.0)])
    assert blend.weights == (1.0, 0.0, 1.0, 2.0)
    assert blend.version == 1
    blend.update([_expert(blend, 0.5, 2.0, personal=False)])
    assert blend.weights == (1.0, 0.0, 1.0, 2.0)  # a tie: the blend nearer the prior keeps the lead
    blend.update([_expert(blend, 0.5, 2.0, personal=False)])
    assert blend.weights == (0.0, 0.0, 0.5, 2.0)
    assert blend.version == 2


def test_credit_does_not_depend_on_the_order_of_feedback() -> None:
    rng = np.random.default_rng(3)
    forward, backward = Blend(PRIOR), Blend(PRIOR)
    n = forward.credit.shape[0]
    feedback = [np.flatnonzero(rng.integers(0, 2, n)).tolist() for _ in range(40)]
    for hits in feedback:
        forward.update(hits)
    for hits in reversed(feedback):
        backward.update(hits)
    assert forward.weights == backward.weights
    assert forward.credit.tolist() == backward.credit.tolist()


def test_hits_rank_the_consumed_item_against_the_contenders() -> None:
    blend = Blend(PRIOR)
    consumed = np.array([0.0, 0.0, 0.2, 1.0])  # fresh, not popular, no co-occurrence
    contenders = np.tile(np.array([0.0, 0.0, 1.0, 0.1]), (HIT_RANK, 1))  # popular, stale
    hits = blend.hits(consumed, contenders)
    assert _expert(blend, 0.0, 1.0) in hits  # recency alone puts it first
    assert _expert(blend, 1.0, 0.0) not in hits  # popularity alone puts the contenders first
    assert _expert(blend, 0.0, 0.0, personal=False) not in hits  # all equal: ties count against the item
    assert blend.hits(consumed, np.zeros((0, 4))) == tuple(_all(blend))  # too few contenders to miss the top


def test_feedback_of_another_grid_is_ignored() -> None:
    blend = Blend(PRIOR)
    blend.update([blend.credit.shape[0]])  # beyond this grid
    blend.update([])
    assert blend.updates == 0 and blend.version == 0 and not blend.credit.any()


def test_history_samples_the_weights() -> None:
    blend = Blend(PRIOR, sample_every=10)
    for _ in range(35):
        blend.update([0])
    assert [point.updates for point in blend.history] == [0, 10, 20, 30]
    assert [point.updates for point in blend.trajectory()] == [0, 10, 20, 30, 35]
    assert all(len(point.weights) == len(COMPONENTS) for point in blend.history)


def test_a_bad_prior_is_refused() -> None:
    with pytest.raises(ValueError, match="prior"):
        Blend((1.0, -0.1, 0.0, 0.0))


def test_recency_halves_per_half_life_and_scales_by_the_largest() -> None:
    counter = RecencyCounter(DAY)
    counter.add(0, 0)
    counter.add(1, DAY)
    assert counter.scaled(1) == 1.0
    assert counter.scaled(0) == pytest.approx(0.5)
    counter.add(0, 2 * DAY)  # 0: 2^-2 + 1 (relative to now), 1: 2^-1
    assert counter.scaled(0) == 1.0
    assert counter.scaled(1) == pytest.approx(0.5 / 1.25)


def test_recency_rebases_far_from_its_anchor() -> None:
    counter = RecencyCounter(1000)
    counter.add(0, 0)
    counter.add(1, 400_000)  # 400 half-lives later: rebased, values stay finite
    assert math.isfinite(counter.values[1]) and counter.scaled(1) == 1.0
    assert counter.scaled(0) == pytest.approx(0.0)
    counter.add(2, 399_000)  # out of order
    assert counter.scaled(2) == pytest.approx(0.5)


def test_a_stream_where_fresh_items_win_teaches_recency_over_popularity() -> None:
    from streamrec.models.events import CatalogItem, Play
    from streamrec.models.recommender import StreamRecommender

    hour = 3_600_000
    system = StreamRecommender()
    system.add_items([(CatalogItem(f"i{k}", f"title {k}"), 0) for k in range(40)])
    events = [Play(f"old{u}", f"o{u}", "i0", 60.0, u * 1000) for u in range(30)]  # an old hit
    for k in range(1, 40):  # then each fresh item is watched by three viewers in a row, a day apart
        events += [Play(f"f{k}.{v}", f"f{k}.{v}", f"i{k}", 60.0, k * 24 * hour + v * 1000) for v in range(3)]
    for event in events:
        system.learn_one(event)
    blend = system.item_side.blend
    assert 0 < blend.updates <= len(events)
    assert blend.credit[_expert(blend, 0.0, 1.0)] > blend.credit[_expert(blend, 1.0, 0.0)]  # recency alone wins
    _, _, popularity, recency = blend.weights
    assert recency >= popularity
