"""Calibrated re-ranking (Steck 2018, "Calibrated Recommendations"), with exposure caps enforced as it goes.

Greedy: each position takes the candidate maximising (1 - λ)·relevance − λ·KL(p ‖ q̃), where p is the user's
genre mix, q the list's so far with the candidate, and q̃ = (1 − α)q + αp keeps the KL finite.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np
import numpy.typing as npt
from numba import njit

from streamrec.models.fairness import ExposureCaps
from streamrec.models.top_k import NO_ROWS, best_first_into

T = TypeVar("T")

ALPHA = 0.01


def kl_miscalibration(p: npt.NDArray[np.float64], q: npt.NDArray[np.float64], alpha: float = ALPHA) -> float:
    """Steck's KL(p ‖ q̃) between a history genre mix p and a list genre mix q (both summing to 1)."""
    q_tilde = (1 - alpha) * q + alpha * p
    mask = p > 0
    return float(np.sum(p[mask] * np.log(p[mask] / q_tilde[mask])))


def calibrated_rerank(
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

    relevance: candidates' scores; genre_dist: (candidates x genres) mixes (its width fixes the genre count);
    target: the user's genre mix p, or None for no calibration (e.g. a new user).
    """
    width = genre_dist.shape[1] if target is None else max(genre_dist.shape[1], target.shape[0])
    n_genres = max(width, max((max(c) + 1 for c in genre_cols if c), default=0), 1)
    gidx, gw = _padded(genre_cols, lambda col: col)
    creator_ids: dict[str, int] = {}
    cidx, _ = _padded(creators, lambda name: creator_ids.setdefault(name, len(creator_ids)))
    return calibrated_rerank_padded(relevance, target, n, weight, caps, gidx, gw, cidx, n_genres)


def calibrated_rerank_padded(
    relevance: npt.NDArray[np.float32],
    target: npt.NDArray[np.float64] | None,
    n: int,
    weight: float,
    caps: ExposureCaps,
    genre_idx: npt.NDArray[np.int64],
    genre_share: npt.NDArray[np.float64],
    creator_idx: npt.NDArray[np.int64],
    n_genres: int,
) -> list[int]:
    """`calibrated_rerank` on padded arrays (-1 = none), as the catalog keeps them: no per-call Python loops.

    genre_idx/genre_share: (candidates x widest) genre columns and each one's share of the item (1/len);
    creator_idx: (candidates x widest) creator ids (any non-negative ints).
    """
    m = relevance.shape[0]
    n = min(n, m)
    if n == 0:
        return []
    rel = relevance.astype(np.float64)
    span = float(rel.max() - rel.min())
    rel = (rel - rel.min()) / span if span > 0 else np.zeros(m)
    p = np.zeros(max(n_genres, 1))
    calibrate = target is not None and weight > 0 and float(target.sum()) > 0
    if calibrate:
        assert target is not None
        p[: target.shape[0]] = target
    genre_limit, creator_limit = caps.limits(n)
    n_creators = int(creator_idx.max(initial=-1)) + 1
    chosen = _greedy(
        rel,
        genre_idx,
        genre_share,
        p,
        weight if calibrate else 0.0,
        n,
        genre_limit,
        creator_idx,
        creator_limit,
        max(n_creators, 1),
    )
    return [int(c) for c in chosen]


@functools.lru_cache(maxsize=16)
def _size_limits(caps: ExposureCaps, n: int) -> npt.NDArray[np.int64]:
    """The caps' limits for each list size up to `n`, one row a size (shared by every call: never written)."""
    return np.array([caps.limits(size) for size in range(n + 1)], dtype=np.int64).reshape(n + 1, 2)


def pick_lists(
    scores: npt.NDArray[np.float32],
    score_offsets: npt.NDArray[np.int64],
    pool: int,
    targets: Sequence[npt.NDArray[np.float64] | None],
    n: int,
    weight: float,
    caps: ExposureCaps,
    genre_idx: npt.NDArray[np.int64],
    genre_share: npt.NDArray[np.float64],
    creator_idx: npt.NDArray[np.int64],
    n_genres: int,
    n_creators: int,
    rows: npt.NDArray[np.int64] = NO_ROWS,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Each user's list in one compiled call: the `pool` best finite scores (`top_k.best_first`: ties by
    position), then `calibrated_rerank_padded` of them, in the same float steps. User u's scores are
    `scores[score_offsets[u]:score_offsets[u + 1]]`, of the catalog rows `rows[...]` at the same positions (empty:
    the positions are the rows). Returns the chosen positions (into each user's slice, list order, all lists) and
    their offsets."""
    users = len(targets)
    p = np.zeros((users, max(n_genres, 1)))
    weights = np.zeros(users)
    for u, target in enumerate(targets):
        if target is not None and weight > 0 and float(target.sum()) > 0:
            p[u, : target.shape[0]] = target
            weights[u] = weight
    limits = _size_limits(caps, n)
    chosen = np.empty(users * max(min(n, pool), 0), dtype=np.int64)
    offsets = np.zeros(users + 1, dtype=np.int64)
    _pick_many(
        scores,
        score_offsets,
        rows,
        pool,
        genre_idx,
        genre_share,
        creator_idx,
        p,
        weights,
        limits,
        n_creators,
        chosen,
        offsets,
    )
    return chosen[: offsets[-1]], offsets


@njit(cache=True)
def _pick_many(
    scores: npt.NDArray[np.float32],
    score_offsets: npt.NDArray[np.int64],
    rows: npt.NDArray[np.int64],
    pool: int,
    gidx: npt.NDArray[np.int64],
    gw: npt.NDArray[np.float64],
    cidx: npt.NDArray[np.int64],
    p: npt.NDArray[np.float64],
    weights: npt.NDArray[np.float64],
    limits: npt.NDArray[np.int64],
    n_creators: int,
    chosen: npt.NDArray[np.int64],
    offsets: npt.NDArray[np.int64],
) -> None:  # pragma: no cover - compiled
    """`pick_lists`: relevance scaled to [0, 1] over the pool (in float64, as `calibrated_rerank_padded`), then
    `_greedy` on the pool's catalog rows."""
    n = limits.shape[0] - 1
    top = np.empty(max(pool, 0), dtype=np.int64)
    for u in range(score_offsets.shape[0] - 1):
        start = score_offsets[u]
        user_scores = scores[start : score_offsets[u + 1]]
        m = best_first_into(user_scores, NO_ROWS, pool, top)
        size = min(m, n)
        offsets[u + 1] = offsets[u] + size
        if size == 0:
            continue
        positions = top[:m]
        rel = user_scores[positions].astype(np.float64)
        low = rel.min()
        span = rel.max() - low
        rel = (rel - low) / span if span > 0 else np.zeros(m)
        cand = rows[start + positions] if rows.shape[0] else positions
        picks = _greedy(
            rel, gidx[cand], gw[cand], p[u], weights[u], size, limits[size, 0], cidx[cand], limits[size, 1], n_creators
        )
        chosen[offsets[u] : offsets[u + 1]] = positions[picks]


def _padded(
    rows: Sequence[tuple[T, ...]], to_int: Callable[[T], int]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Ragged tuples as a (rows x widest) index matrix padded with -1, and each entry's share 1/len."""
    width = max((len(r) for r in rows), default=0) or 1
    idx = np.full((len(rows), width), -1, dtype=np.int64)
    share = np.zeros((len(rows), width))
    for pos, row in enumerate(rows):
        for j, value in enumerate(row):
            idx[pos, j] = to_int(value)
            share[pos, j] = 1.0 / len(row)
    return idx, share


@njit(cache=True)
def _greedy(
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
    # Only a candidate's own genres change q~ when it is added, so for every candidate
    # KL(p || q~) = sum_g p log p - sum_g p log base - sum_{g of candidate} p_g log1p(c w_g / base_g).
    # A term depends only on (genre, share), so each step computes it once per pair that occurs (same operands,
    # same result) rather than once per candidate; a candidate's pairs are listed once, in column order.
    m = rel.shape[0]
    n_genres = p.shape[0]
    calibrate = weight > 0
    start = np.zeros(m + 1, dtype=np.int64)  # candidate j's pairs: [start[j], start[j + 1])
    pair_genre = np.empty(m * gidx.shape[1] + 1, dtype=np.int64)
    pair_share = np.empty(m * gidx.shape[1] + 1, dtype=np.int64)
    shares = np.empty(m * gidx.shape[1] + 1)  # the distinct shares
    n_shares = 0
    n_pairs = 0
    if calibrate:
        for j in range(m):
            for w in range(gidx.shape[1]):
                g = gidx[j, w]
                if g >= 0 and p[g] > 0:
                    s = 0
                    while s < n_shares and shares[s] != gw[j, w]:
                        s += 1
                    if s == n_shares:
                        shares[s] = gw[j, w]
                        n_shares += 1
                    pair_genre[n_pairs] = g
                    pair_share[n_pairs] = s
                    n_pairs += 1
            start[j + 1] = n_pairs
    # Compact genre and creator lists (the padded arrays are mostly -1) for the cap checks and updates.
    g_start = np.zeros(m + 1, dtype=np.int64)
    g_list = np.empty(m * gidx.shape[1] + 1, dtype=np.int64)
    c_start = np.zeros(m + 1, dtype=np.int64)
    c_list = np.empty(m * cidx.shape[1] + 1, dtype=np.int64)
    for j in range(m):
        t = g_start[j]
        for w in range(gidx.shape[1]):
            if gidx[j, w] >= 0:
                g_list[t] = gidx[j, w]
                t += 1
        g_start[j + 1] = t
        t = c_start[j]
        for w in range(cidx.shape[1]):
            if cidx[j, w] >= 0:
                c_list[t] = cidx[j, w]
                t += 1
        c_start[j + 1] = t
    terms = np.empty((n_genres, max(n_shares, 1)))
    step_of = np.full((n_genres, max(n_shares, 1)), -1, dtype=np.int64)  # the step a term was computed at
    taken = np.zeros(m, dtype=np.bool_)
    list_mix = np.zeros(n_genres)
    genre_count = np.zeros(n_genres, dtype=np.int64)
    creator_count = np.zeros(n_creators, dtype=np.int64)
    chosen = np.empty(n, dtype=np.int64)
    p_log_p = 0.0
    empty_log = np.zeros(n_genres)
    for g in range(n_genres):
        if p[g] > 0:
            p_log_p += p[g] * np.log(p[g])
            empty_log[g] = p[g] * np.log(ALPHA * p[g])
    rel_sum = 0.0
    for k in range(n):
        c = (1 - ALPHA) / (k + 1)
        base_log = 0.0
        if calibrate:
            for g in range(n_genres):
                if p[g] > 0:
                    # c * 0 + ALPHA * p[g] is ALPHA * p[g]: a genre not yet in the list has a constant term
                    base_log += p[g] * np.log(c * list_mix[g] + ALPHA * p[g]) if list_mix[g] != 0 else empty_log[g]
        best, best_fit = -1, -1
        best_val, best_fit_val = -np.inf, -np.inf
        for j in range(m):
            if taken[j]:
                continue
            if calibrate:
                gain = 0.0
                for t in range(start[j], start[j + 1]):
                    g = pair_genre[t]
                    s = pair_share[t]
                    if step_of[g, s] != k:
                        terms[g, s] = p[g] * np.log1p(c * shares[s] / (c * list_mix[g] + ALPHA * p[g]))
                        step_of[g, s] = k
                    gain += terms[g, s]
                value = (1 - weight) * (rel_sum + rel[j]) - weight * (p_log_p - base_log - gain)
            else:
                value = rel[j]
            if value > best_val:
                best, best_val = j, value
            if value > best_fit_val:
                fits = True
                for t in range(g_start[j], g_start[j + 1]):
                    if genre_count[g_list[t]] >= genre_limit:
                        fits = False
                        break
                if fits:
                    for t in range(c_start[j], c_start[j + 1]):
                        if creator_count[c_list[t]] >= creator_limit:
                            fits = False
                            break
                if fits:
                    best_fit, best_fit_val = j, value
        pick = best_fit if best_fit >= 0 else best  # the caps yield rather than shorten the list
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
