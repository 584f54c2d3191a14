from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from models.calibration import calibrated_rerank, kl_miscalibration
from models.fairness import ExposureCaps

NO_CAPS = ExposureCaps(max_genre_share=1.0, max_creator_share=1.0)


def _mix(genre_dist: np.ndarray, rows: list[int]) -> np.ndarray:
    mix = genre_dist[rows].sum(axis=0)
    return mix / mix.sum()


def test_without_calibration_the_list_is_the_relevance_order() -> None:
    rel = np.array([0.1, 0.9, 0.5, 0.7], dtype=np.float32)
    gd = np.eye(4, dtype=np.float32)
    order = calibrated_rerank(rel, gd, None, 3, 0.5, NO_CAPS, [(i,) for i in range(4)], [()] * 4)
    assert order == [1, 3, 2]


def test_calibration_brings_the_list_mix_towards_the_history_mix() -> None:
    rng = np.random.default_rng(3)
    m, g = 60, 2
    genre = rng.integers(0, g, m)
    gd = np.eye(g, dtype=np.float32)[genre]
    rel = np.where(genre == 0, 1.0, 0.5).astype(np.float32) + rng.random(m).astype(np.float32) * 0.1
    target = np.array([0.5, 0.5])
    cols = [(int(x),) for x in genre]
    plain = calibrated_rerank(rel, gd, target, 10, 0.0, NO_CAPS, cols, [()] * m)
    calibrated = calibrated_rerank(rel, gd, target, 10, 0.9, NO_CAPS, cols, [()] * m)
    assert kl_miscalibration(target, _mix(gd, calibrated)) < kl_miscalibration(target, _mix(gd, plain))


def test_caps_limit_a_genre_and_a_creator() -> None:
    m = 20
    gd = np.zeros((m, 2), dtype=np.float32)
    gd[:15, 0] = 1.0
    gd[15:, 1] = 1.0
    cols = [(0,) if i < 15 else (1,) for i in range(m)]
    creators = [("auteur",) if i < 8 else (f"c{i}",) for i in range(m)]
    rel = np.linspace(1.0, 0.0, m).astype(np.float32)  # the capped genre/creator is the most relevant
    order = calibrated_rerank(rel, gd, None, 10, 0.0, ExposureCaps(0.6, 0.2), cols, creators)
    assert len(order) == 10
    assert sum(1 for i in order if cols[i] == (0,)) <= 6
    assert sum(1 for i in order if creators[i] == ("auteur",)) <= 2


@given(st.lists(st.floats(0.01, 1.0), min_size=2, max_size=8), st.lists(st.floats(0.01, 1.0), min_size=2, max_size=8))
def test_kl_is_non_negative_and_zero_for_equal_mixes(a: list[float], b: list[float]) -> None:
    k = min(len(a), len(b))
    p = np.array(a[:k]) / sum(a[:k])
    q = np.array(b[:k]) / sum(b[:k])
    assert kl_miscalibration(p, q) >= -1e-12
    assert abs(kl_miscalibration(p, p)) < 1e-12
