"""Exposure metrics against hand-computed values, plus their invariants as properties."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamrec.models.metrics import CreatorExposure, ItemExposure, gini, top_share, total_variation

exposures = st.lists(st.floats(min_value=0.0, max_value=1e6, allow_nan=False), min_size=1, max_size=60)


def test_gini_by_hand() -> None:
    # sorted x = (0, 0, 1, 3), n = 4, sum 4: 2 * (3*1 + 4*3) / (4 * 4) - 5/4 = 30/16 - 20/16 = 0.625
    assert gini([3, 0, 1, 0]) == pytest.approx(0.625)
    assert gini([1, 1]) == 0.0
    assert gini([0, 2]) == pytest.approx(0.5)  # one of two holds everything: 1 - 1/n
    assert gini([1, 2, 3]) == pytest.approx(2 / 9)  # mean absolute difference 8/9 over twice the mean 4
    assert gini([]) == 0.0
    assert gini([0, 0, 0]) == 0.0


@given(exposures)
def test_gini_in_unit_interval(values: list[float]) -> None:
    assert 0.0 <= gini(values) <= 1.0


@given(st.integers(min_value=1, max_value=200), st.floats(min_value=0.001, max_value=1e6))
def test_gini_zero_when_uniform(n: int, value: float) -> None:
    assert gini([value] * n) == pytest.approx(0.0, abs=1e-9)


@given(st.integers(min_value=1, max_value=200))
def test_gini_of_one_holding_everything(n: int) -> None:
    assert gini([0.0] * (n - 1) + [5.0]) == pytest.approx(1 - 1 / n)


def test_top_share_by_hand() -> None:
    values = [10.0, 5.0, 3.0, 2.0] + [0.0] * 196  # 200 items: the top 1% is 2 items, 15 of 20
    assert top_share(values) == pytest.approx(0.75)
    assert top_share(values, 0.5) == pytest.approx(1.0)
    assert top_share([1.0, 1.0, 1.0], 0.01) == pytest.approx(1 / 3)  # at least one item
    assert top_share([0.0, 0.0]) == 0.0
    with pytest.raises(ValueError, match="fraction"):
        top_share([1.0], 0.0)


@given(exposures, st.floats(min_value=0.001, max_value=1.0), st.floats(min_value=0.001, max_value=1.0))
def test_top_share_monotone_in_the_fraction(values: list[float], a: float, b: float) -> None:
    small, large = sorted((a, b))
    assert 0.0 <= top_share(values, small) <= top_share(values, large) + 1e-12 <= 1.0 + 1e-12


@given(exposures)
def test_top_share_at_least_the_head_fraction(values: list[float]) -> None:
    """The largest values hold at least their fair share; equality when all are equal."""
    if sum(values) > 0:
        head = max(1, math.ceil(0.01 * len(values)))
        assert top_share(values) >= head / len(values) - 1e-9


def test_item_exposure_counts_unshown_items_as_zero() -> None:
    catalog = {str(i): i for i in range(4)}
    exposure = ItemExposure(catalog)
    exposure.update(["3", "1"])
    exposure.update(["3"])
    assert sorted(exposure.values()) == [0.0, 0.0, 1.0, 2.0]
    assert exposure.gini() == pytest.approx(gini([0, 0, 1, 2]))
    assert exposure.top_share() == pytest.approx(2 / 3)  # 4 items: the top one


def test_total_variation() -> None:
    assert total_variation({"a": 0.5, "b": 0.5}, {"a": 0.5, "b": 0.5}) == 0.0
    assert total_variation({"a": 1.0}, {"b": 1.0}) == pytest.approx(1.0)
    assert total_variation({"a": 0.75, "b": 0.25}, {"a": 0.25, "b": 0.5, "c": 0.25}) == pytest.approx(0.5)


def test_creator_exposure_by_hand() -> None:
    creators = {"x": ("ann",), "y": ("bob",), "z": ("ann", "bob"), "w": ()}
    exposure = ItemExposure(creators)
    metric = CreatorExposure(lambda item: creators.get(item, ()), exposure)
    assert metric.get() is None
    # shown: x twice, z once (half each), w (no creators: left out) -> ann 2.5, bob 0.5 of 3
    exposure.update(["x", "z", "w"])
    exposure.update(["x"])
    # consumed: y, y, x -> ann 1/3, bob 2/3
    for item in ("y", "y", "x"):
        metric.update(item)
    assert metric.shares() == {"ann": pytest.approx((5 / 6, 1 / 3)), "bob": pytest.approx((1 / 6, 2 / 3))}
    assert metric.get() == pytest.approx(5 / 6 - 1 / 3)
    # the most consumed creator (bob) is shown a quarter as much as consumed; both: 1
    assert metric.head_ratio(1) == pytest.approx((1 / 6) / (2 / 3))
    assert metric.head_ratio(2) == pytest.approx(1.0)


def test_creator_exposure_matches_when_lists_show_what_is_watched() -> None:
    creators = {"x": ("ann",), "y": ("bob",)}
    exposure = ItemExposure(creators)
    metric = CreatorExposure(lambda item: creators[item], exposure)
    for item in ("x", "y", "y"):
        exposure.update([item])
        metric.update(item)
    assert metric.get() == pytest.approx(0.0)
    assert metric.head_ratio() == pytest.approx(1.0)
