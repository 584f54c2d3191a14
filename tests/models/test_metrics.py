"""Metrics against hand-computed values, plus their invariants as properties."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamrec.models.base import Reason, Recommendation
from streamrec.models.metrics import (
    MRR,
    NDCG,
    Coverage,
    HitRate,
    Miscalibration,
    RankMetric,
    ReasonsTrue,
    UserMiscalibration,
    genre_mix,
    hit_at_k,
    miscalibration,
    ndcg_at_k,
    rank_of,
    reciprocal_rank,
)

ranks = st.one_of(st.none(), st.integers(min_value=1, max_value=50))


def test_rank_of() -> None:
    assert rank_of("b", ["a", "b", "c"]) == 2
    assert rank_of("z", ["a", "b"]) is None
    assert rank_of("a", []) is None
    assert rank_of("b", ("a", "b", "b")) == 2  # the first occurrence
    assert rank_of("c", "abc") == 3  # any sequence (the loop, not list.index)
    assert rank_of("z", "abc") is None


def test_hit_ndcg_rr_by_hand() -> None:
    assert hit_at_k(1, 10) == 1.0
    assert hit_at_k(10, 10) == 1.0
    assert hit_at_k(11, 10) == 0.0
    assert hit_at_k(None, 10) == 0.0
    assert ndcg_at_k(1, 10) == 1.0
    assert ndcg_at_k(3, 10) == pytest.approx(0.5)  # 1/log2(4)
    assert ndcg_at_k(7, 10) == pytest.approx(1 / 3)  # 1/log2(8)
    assert ndcg_at_k(11, 10) == 0.0
    assert reciprocal_rank(4) == 0.25
    assert reciprocal_rank(None) == 0.0
    with pytest.raises(ValueError):
        hit_at_k(1, 0)
    with pytest.raises(ValueError):
        reciprocal_rank(0)


def fed(metric: RankMetric, ranks: list[int | None]) -> RankMetric:
    for rank in ranks:
        metric.update(rank)
    return metric


def test_means_by_hand() -> None:
    rs = [1, 3, None, 12]
    assert fed(HitRate(10), rs).get() == 0.5
    assert fed(NDCG(10), rs).get() == pytest.approx((1.0 + 0.5) / 4)
    assert fed(MRR(), rs).get() == pytest.approx((1 + 1 / 3 + 0 + 1 / 12) / 4)
    assert HitRate(10).get() == 0.0
    assert fed(NDCG(10), rs).points == 4


def test_hit_rate_over_the_latest_points() -> None:
    hr = HitRate(2, window=2)
    assert hr.rolling() == 0.0
    for rank, rolling in ((1, 1.0), (None, 0.5), (5, 0.0), (2, 0.5)):
        hr.update(rank)
        assert hr.rolling() == rolling
    assert hr.get() == 0.5


def test_coverage() -> None:
    catalog = ["a", "b", "c", "d"]
    coverage = Coverage(catalog)
    coverage.update(["a", "b"])
    coverage.update(["a"])
    assert coverage.get() == 0.5
    catalog += ["e", "f", "g", "h"]  # read at `get`: the catalog as it is then
    assert coverage.get() == 0.25
    assert Coverage(["a"]).get() == 0.0
    assert Coverage([]).get() == 0.0


def test_mean_miscalibration() -> None:
    mean = Miscalibration()
    assert mean.get() is None  # undefined without a point whose user has genres
    mean.update(0.5)
    mean.update(1.0)
    assert mean.get() == 0.75 and mean.points == 2


def test_reasons_true_counts_items_and_kinds() -> None:
    checks = {"popular": lambda ev, user, item, ts, seq: ev.get("count") == "3"}
    reasons = ReasonsTrue(checks)
    assert reasons.get() == 0.0
    popular = Reason("popular", "3 views", {"count": "3"})
    wrong = Reason("popular", "4 views", {"count": "4"})
    unknown = Reason("mystery", "?")
    recs = [
        Recommendation("a", 1, 1.0, (popular,)),
        Recommendation("b", 2, 0.9, (popular, wrong)),
        Recommendation("c", 3, 0.8, (unknown,)),
        Recommendation("d", 4, 0.7, ()),  # no reason: not true
    ]
    reasons.update(recs, "u", 0, None)
    assert reasons.items_checked == 4 and reasons.items_true == 1 and reasons.get() == 0.25
    assert reasons.by_kind() == {"mystery": (0, 1), "popular": (2, 3)}


def test_genre_mix_by_hand() -> None:
    mix = genre_mix([("Action", "Comedy"), ("Action",), ()])
    assert mix == pytest.approx({"Action": 0.75, "Comedy": 0.25})
    assert genre_mix([]) == {}
    assert genre_mix([("Drama", "Drama")]) == {"Drama": 1.0}  # duplicate genres count once


def test_miscalibration_by_hand() -> None:
    p = {"Action": 0.5, "Comedy": 0.5}
    q = {"Action": 1.0}
    # q~ = 0.99 q + 0.01 p: Action 0.995, Comedy 0.005
    expected = 0.5 * math.log(0.5 / 0.995) + 0.5 * math.log(0.5 / 0.005)
    assert miscalibration(p, q) == pytest.approx(expected)
    assert miscalibration(p, p) == pytest.approx(0.0)
    assert miscalibration({"Action": 1.0}, {}) == pytest.approx(math.log(100))  # a list without genres
    with pytest.raises(ValueError):
        miscalibration({}, q)


@given(ranks, st.integers(min_value=1, max_value=30))
def test_hit_and_ndcg_bounds(rank: int | None, k: int) -> None:
    hit, ndcg = hit_at_k(rank, k), ndcg_at_k(rank, k)
    assert 0.0 <= ndcg <= hit <= 1.0
    assert 0.0 <= reciprocal_rank(rank) <= 1.0


@given(st.lists(ranks, max_size=40), st.integers(min_value=1, max_value=30))
def test_mean_bounds(rs: list[int | None], k: int) -> None:
    hr = fed(HitRate(k), rs).get()
    assert 0.0 <= hr <= 1.0
    assert fed(NDCG(k), rs).get() <= hr + 1e-12


GENRES = ["Action", "Comedy", "Drama", "Horror", "Sci-Fi"]
mixes = st.lists(st.lists(st.sampled_from(GENRES), min_size=1, max_size=3), min_size=1, max_size=8).map(genre_mix)


@given(mixes, mixes)
def test_kl_nonnegative_and_zero_iff_equal(p: dict[str, float], q: dict[str, float]) -> None:
    kl = miscalibration(p, q)
    assert kl >= 0.0
    assert miscalibration(p, p) == pytest.approx(0.0, abs=1e-12)
    differs = max(abs(p.get(g, 0.0) - q.get(g, 0.0)) for g in GENRES) > 1e-6
    assert (kl > 1e-12) == differs


genre_weights = st.dictionaries(st.sampled_from("abcdefgh"), st.floats(0.0, 1.0), max_size=8)


@given(genre_weights, st.lists(genre_weights, max_size=4), st.sampled_from([0.01, 0.3, 1.0]))
def test_miscalibration_against_one_p_is_bit_identical(
    p: dict[str, float], qs: list[dict[str, float]], alpha: float
) -> None:
    if not any(v > 0 for v in p.values()):
        with pytest.raises(ValueError):
            UserMiscalibration(p, alpha)
        return
    against = UserMiscalibration(p, alpha)
    for q in [*qs, {}, {g: 0.0 for g in p}]:  # (q(g) = 0 given explicitly, and left out)
        try:
            expected = miscalibration(p, q, alpha)
        except (ArithmeticError, ValueError) as error:  # (subnormal shares): the same error, at the same call
            with pytest.raises(type(error)):
                against(q)
        else:
            assert against(q) == expected  # exactly: the evaluator's totals must not move


def test_miscalibration_against_one_p_rejects_a_bad_alpha() -> None:
    with pytest.raises(ValueError):
        UserMiscalibration({"a": 1.0}, 0.0)
