"""Calibrated re-ranking (Steck 2018, "Calibrated Recommendations"), with exposure caps enforced as it goes.

Greedy: each position takes the candidate maximising (1 - λ)·relevance − λ·KL(p ‖ q̃), where p is the user's
genre mix, q the list's so far with the candidate, and q̃ = (1 − α)q + αp keeps the KL finite.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np
import numpy.typing as npt
from numba import njit

from models.fairness import ExposureCaps

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
