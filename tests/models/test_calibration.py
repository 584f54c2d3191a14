from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

from streamrec.models.calibration import (
    ALPHA,
    _greedy,
    calibrated_rerank,
    calibrated_rerank_padded,
    kl_miscalibration,
    pick_lists,
)
from streamrec.models.fairness import ExposureCaps
from streamrec.models.top_k import best_first

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


# --- a plain reference implementation (vectorised numpy, no tricks) that the compiled one must match ---------
class _Ledger:
    def __init__(self, caps: ExposureCaps, list_size: int) -> None:
        self.genre_limit, self.creator_limit = caps.limits(list_size)
        self.genres: Counter[int] = Counter()
        self.creators: Counter[str] = Counter()

    def fits(self, genre_cols: tuple[int, ...], creators: tuple[str, ...]) -> bool:
        return all(self.genres[g] < self.genre_limit for g in genre_cols) and all(
            self.creators[c] < self.creator_limit for c in creators
        )

    def add(self, genre_cols: tuple[int, ...], creators: tuple[str, ...]) -> None:
        self.genres.update(genre_cols)
        self.creators.update(creators)


def _reference_rerank(
    relevance: npt.NDArray[np.float32],
    genre_dist: npt.NDArray[np.float32],
    target: npt.NDArray[np.float64] | None,
    n: int,
    weight: float,
    caps: ExposureCaps,
    genre_cols: Sequence[tuple[int, ...]],
    creators: Sequence[tuple[str, ...]],
) -> list[int]:
    """Positions (into the candidate arrays) of the chosen n items, in list order.

    relevance: candidates' scores, best first is not required; genre_dist: (candidates x genres) mixes;
    target: the user's genre mix p, or None for no calibration (e.g. a new user).
    """
    m = relevance.shape[0]
    n = min(n, m)
    rel = relevance.astype(np.float64)
    span = float(rel.max() - rel.min()) if m else 0.0
    rel = (rel - rel.min()) / span if span > 0 else np.zeros(m)
    calibrate = target is not None and weight > 0 and float(target.sum()) > 0
    if calibrate:
        assert target is not None
        mask = target > 0  # KL(p || q~) only sums over the user's genres
        p = target[mask]
        log_p = np.log(p)
        gd = genre_dist[:, mask].astype(np.float64)
        list_mix = np.zeros(p.shape[0])
    ledger = _Ledger(caps, n)
    taken = np.zeros(m, dtype=bool)
    chosen: list[int] = []
    rel_sum = 0.0
    for k in range(n):
        if calibrate:
            q_tilde = (1 - ALPHA) / (k + 1) * (list_mix[None, :] + gd) + ALPHA * p[None, :]
            kl = (p[None, :] * (log_p[None, :] - np.log(q_tilde))).sum(axis=1)
            objective = (1 - weight) * (rel_sum + rel) - weight * kl
        else:
            objective = rel.copy()
        objective[taken] = -np.inf
        pick = int(np.argmax(objective))
        if not ledger.fits(genre_cols[pick], creators[pick]):
            pick = -1
            for pos in np.argsort(-objective, kind="stable"):
                if taken[pos]:
                    break
                if ledger.fits(genre_cols[pos], creators[pos]):
                    pick = int(pos)
                    break
            if pick < 0:  # every candidate breaks a cap: the caps yield rather than shorten the list
                pick = int(np.argmax(objective))
        taken[pick] = True
        chosen.append(pick)
        ledger.add(genre_cols[pick], creators[pick])
        if calibrate:
            list_mix += gd[pick]
        rel_sum += rel[pick]
    return chosen


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_compiled_rerank_matches_the_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    m, g = int(rng.integers(1, 80)), 12
    rel = rng.random(m).astype(np.float32)
    gd = np.zeros((m, g), dtype=np.float32)
    cols = []
    for i in range(m):
        c = tuple(int(x) for x in rng.choice(g, rng.integers(0, 4), replace=False))
        cols.append(c)
        if c:
            gd[i, list(c)] = 1 / len(c)
    raw = rng.random(g) * (rng.random(g) < 0.6)
    target = raw / raw.sum() if raw.sum() > 0 else None
    creators = [tuple(f"c{x}" for x in rng.integers(0, 6, rng.integers(0, 3))) for _ in range(m)]
    caps = ExposureCaps(float(rng.choice([0.2, 0.5, 1.0])), float(rng.choice([0.1, 0.2, 1.0])))
    weight = float(rng.choice([0.0, 0.3, 0.6, 0.9]))
    n = int(rng.integers(1, 25))
    assert calibrated_rerank(rel, gd, target, n, weight, caps, cols, creators) == _reference_rerank(
        rel, gd, target, n, weight, caps, cols, creators
    )


@njit(cache=True)
def _first_greedy(
    rel: npt.NDArray[np.float64],
    gidx: npt.NDArray[np.int64],
    gw: npt.NDArray[np.float64],
    p: npt.NDArray[np.float64],
    weight: float,
    n: int,
    genre_limit: int,
    cidx: npt.NDArray[np.int64],
    creator_limit: int,
    n_creators: int,
) -> npt.NDArray[np.int64]:  # pragma: no cover - compiled
    """The compiled greedy as first written (every term computed per candidate): the faster one must pick
    exactly what it picks, near-ties included."""
    m = rel.shape[0]
    taken = np.zeros(m, dtype=np.bool_)
    list_mix = np.zeros(p.shape[0])
    genre_count = np.zeros(p.shape[0], dtype=np.int64)
    creator_count = np.zeros(n_creators, dtype=np.int64)
    chosen = np.empty(n, dtype=np.int64)
    p_log_p = 0.0
    for g in range(p.shape[0]):
        if p[g] > 0:
            p_log_p += p[g] * np.log(p[g])
    rel_sum = 0.0
    for k in range(n):
        c = (1 - ALPHA) / (k + 1)
        base_log = 0.0
        if weight > 0:
            for g in range(p.shape[0]):
                if p[g] > 0:
                    base_log += p[g] * np.log(c * list_mix[g] + ALPHA * p[g])
        best, best_fit = -1, -1
        best_val, best_fit_val = -np.inf, -np.inf
        for j in range(m):
            if taken[j]:
                continue
            if weight > 0:
                gain = 0.0
                for w in range(gidx.shape[1]):
                    g = gidx[j, w]
                    if g >= 0 and p[g] > 0:
                        gain += p[g] * np.log1p(c * gw[j, w] / (c * list_mix[g] + ALPHA * p[g]))
                value = (1 - weight) * (rel_sum + rel[j]) - weight * (p_log_p - base_log - gain)
            else:
                value = rel[j]
            if value > best_val:
                best, best_val = j, value
            if value > best_fit_val:
                fits = True
                for w in range(gidx.shape[1]):
                    if gidx[j, w] >= 0 and genre_count[gidx[j, w]] >= genre_limit:
                        fits = False
                for w in range(cidx.shape[1]):
                    if cidx[j, w] >= 0 and creator_count[cidx[j, w]] >= creator_limit:
                        fits = False
                if fits:
                    best_fit, best_fit_val = j, value
        pick = best_fit if best_fit >= 0 else best
        taken[pick] = True
        chosen[k] = pick
        rel_sum += rel[pick]
        for w in range(gidx.shape[1]):
            if gidx[pick, w] >= 0:
                list_mix[gidx[pick, w]] += gw[pick, w]
                genre_count[gidx[pick, w]] += 1
        for w in range(cidx.shape[1]):
            if cidx[pick, w] >= 0:
                creator_count[cidx[pick, w]] += 1
    return chosen


def _random_padded(
    rng: np.random.Generator, m: int, g: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Padded genre columns (shares 1/len, gaps allowed), and creator ids, as the catalog keeps them."""
    gidx = np.full((m, 5), -1, dtype=np.int64)
    gw = np.zeros((m, 5))
    cidx = np.full((m, 3), -1, dtype=np.int64)
    for j in range(m):
        cols = rng.choice(g, int(rng.integers(0, min(5, g + 1))), replace=False)
        slots = np.sort(rng.choice(5, cols.shape[0], replace=False))
        gidx[j, slots] = cols
        gw[j, slots] = 1.0 / max(cols.shape[0], 1)
        n_creators = int(rng.integers(0, 4))
        cidx[j, :n_creators] = rng.integers(0, 8, n_creators)
    return gidx, gw, cidx


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_the_greedy_picks_what_it_first_picked(seed: int) -> None:
    rng = np.random.default_rng(seed)
    m, g = int(rng.integers(1, 120)), int(rng.integers(1, 20))
    rel = rng.random(m)
    if rng.random() < 0.5:  # ties and plateaus
        rel = np.round(rel * int(rng.integers(1, 5))) / 4
    raw = rng.random(g) * (rng.random(g) < 0.7)
    p = raw / raw.sum() if raw.sum() > 0 else np.zeros(g)
    gidx, gw, cidx = _random_padded(rng, m, g)
    weight = float(rng.choice([0.0, 0.3, 0.6, 0.9, 1.0]))
    n = int(rng.integers(1, m + 1))
    genre_limit, creator_limit = int(rng.integers(1, 6)), int(rng.integers(1, 4))
    fast = _greedy(rel, gidx, gw, p, weight, n, genre_limit, cidx, creator_limit, 8)
    assert np.array_equal(fast, _first_greedy(rel, gidx, gw, p, weight, n, genre_limit, cidx, creator_limit, 8))


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.booleans())
def test_picking_many_lists_at_once_is_the_pool_reranked_for_each(seed: int, every_row: bool) -> None:
    """`pick_lists`: per user, the best `pool` finite scores (ties by position), re-ranked as
    `calibrated_rerank_padded` re-ranks them; the slices hold candidate rows, or every row in order."""
    rng = np.random.default_rng(seed)
    rows, g = 150, 10
    gidx, gw, cidx = _random_padded(rng, rows, g)
    users = int(rng.integers(1, 8))
    sizes = [rows if every_row else int(rng.integers(0, 60)) for _ in range(users)]
    candidates = [np.arange(rows) if every_row else np.sort(rng.choice(rows, size, replace=False)) for size in sizes]
    scores = [np.round(rng.random(size) * rng.integers(2, 40)).astype(np.float32) for size in sizes]  # ties
    for user_scores in scores:
        user_scores[rng.random(user_scores.shape[0]) < 0.1] = -np.inf  # watched
    targets: list[npt.NDArray[np.float64] | None] = []
    for _ in range(users):
        raw = rng.random(g) * (rng.random(g) < 0.6)
        targets.append(raw / raw.sum() if raw.sum() > 0 and rng.random() < 0.8 else None)
    caps = ExposureCaps(float(rng.choice([0.2, 0.5, 1.0])), float(rng.choice([0.1, 0.2, 1.0])))
    n, weight, pool = int(rng.integers(1, 30)), float(rng.choice([0.0, 0.6])), int(rng.integers(1, 50))
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    flat_rows = np.zeros(0, dtype=np.int64) if every_row else np.concatenate(candidates).astype(np.int64)
    picks, offsets = pick_lists(
        np.concatenate(scores), starts, pool, targets, n, weight, caps, gidx, gw, cidx, g, 8, flat_rows
    )
    for u in range(users):
        top = best_first(scores[u], pool)
        c = candidates[u][top]
        order = calibrated_rerank_padded(scores[u][top], targets[u], n, weight, caps, gidx[c], gw[c], cidx[c], g)
        assert picks[offsets[u] : offsets[u + 1]].tolist() == top[order].tolist()
