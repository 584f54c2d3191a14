"""Calibrated re-ranking (Steck 2018, "Calibrated Recommendations"), with exposure caps enforced as it goes.

Greedy: each position takes the candidate maximising (1 - λ)·relevance − λ·KL(p ‖ q̃), where p is the user's
genre mix, q the list's so far with the candidate, and q̃ = (1 − α)q + αp keeps the KL finite.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np
import numpy.typing as npt
from numba import njit

from streamrec.models.fairness import ExposureCaps

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


def calibrated_rerank_many(
    relevance: npt.NDArray[np.float32],
    offsets: npt.NDArray[np.int64],
    rows: npt.NDArray[np.int64],
    targets: Sequence[npt.NDArray[np.float64] | None],
    n: int,
    weight: float,
    caps: ExposureCaps,
    genre_idx: npt.NDArray[np.int64],
    genre_share: npt.NDArray[np.float64],
    creator_idx: npt.NDArray[np.int64],
    n_genres: int,
    *,
    n_creators: int | None = None,
) -> list[npt.NDArray[np.int64]]:
    """`calibrated_rerank_padded` for many users in one compiled call, with the same results.

    User u's candidates are `rows[offsets[u]:offsets[u + 1]]` (rows of the padded catalog arrays) with
    relevance `relevance[offsets[u]:offsets[u + 1]]`; returns each user's chosen positions into that slice.
    `n_creators`: more than the largest creator id (computed when not given; a larger count changes nothing).
    """
    bounds = offsets.tolist()
    sizes = [min(end - start, n) for start, end in itertools.pairwise(bounds)]
    p = np.zeros((len(targets), max(n_genres, 1)))
    weights = np.zeros(len(targets))
    for u, target in enumerate(targets):
        if target is not None and weight > 0 and float(target.sum()) > 0:
            p[u, : target.shape[0]] = target
            weights[u] = weight
    limits = np.array([caps.limits(size) for size in sizes], dtype=np.int64).reshape(len(sizes), 2)
    if n_creators is None:
        n_creators = max(int(creator_idx.max(initial=-1)) + 1, 1)
    chosen = _greedy_many(
        relevance,
        offsets,
        rows,
        genre_idx,
        genre_share,
        creator_idx,
        p,
        weights,
        np.array(sizes, dtype=np.int64),
        limits,
        n_creators,
    )
    out = []
    end = 0
    for size in sizes:
        out.append(chosen[end : end + size])
        end += size
    return out


@njit(cache=True)
def _greedy_many(
    relevance: npt.NDArray[np.float32],
    offsets: npt.NDArray[np.int64],
    rows: npt.NDArray[np.int64],
    gidx: npt.NDArray[np.int64],
    gw: npt.NDArray[np.float64],
    cidx: npt.NDArray[np.int64],
    p: npt.NDArray[np.float64],
    weights: npt.NDArray[np.float64],
    sizes: npt.NDArray[np.int64],
    limits: npt.NDArray[np.int64],
    n_creators: int,
) -> npt.NDArray[np.int64]:  # pragma: no cover - compiled
    chosen = np.empty(sizes.sum(), dtype=np.int64)
    out = 0
    for u in range(sizes.shape[0]):
        n = sizes[u]
        if n == 0:
            continue
        start, end = offsets[u], offsets[u + 1]
        rel = relevance[start:end].astype(np.float64)
        low = rel.min()
        span = rel.max() - low
        rel = (rel - low) / span if span > 0 else np.zeros(end - start)
        cand = rows[start:end]
        picks = _greedy(
            rel, gidx[cand], gw[cand], p[u], weights[u], n, limits[u, 0], cidx[cand], limits[u, 1], n_creators
        )
        chosen[out : out + n] = picks
        out += n
    return chosen


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
