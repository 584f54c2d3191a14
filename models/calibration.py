"""Calibrated re-ranking (Steck 2018, "Calibrated Recommendations"), with exposure caps enforced as it goes.

Greedy: each position takes the candidate maximising (1 - λ)·relevance − λ·KL(p ‖ q̃), where p is the user's
genre mix, q the list's so far with the candidate, and q̃ = (1 − α)q + αp keeps the KL finite.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from models.fairness import ExposureCaps, ExposureLedger

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
        # Only the candidate's own genres change q~ when it is added, so KL(p || q~) for every candidate is
        # sum_g p log p - sum_g p log base - sum_{g of candidate} p_g log1p(c w_g / base_g).
        width = max((len(c) for c in genre_cols), default=1) or 1
        gidx = np.zeros((m, width), dtype=np.intp)
        gw = np.zeros((m, width))
        for pos, cols in enumerate(genre_cols):
            if cols:
                gidx[pos, : len(cols)] = cols
                gw[pos, : len(cols)] = 1.0 / len(cols)
        p = np.zeros(max(target.shape[0], int(gidx.max()) + 1))
        p[: target.shape[0]] = target
        pg = p[gidx] * (gw > 0)
        support = p > 0
        p_s = p[support]
        p_log_p = float(np.sum(p_s * np.log(p_s)))
        list_mix = np.zeros(p.shape[0])
    ledger = ExposureLedger(caps, n)
    taken = np.zeros(m, dtype=bool)
    chosen: list[int] = []
    rel_sum = 0.0
    for k in range(n):
        if calibrate:
            c = (1 - ALPHA) / (k + 1)
            base = c * list_mix + ALPHA * p
            base_at = base[gidx]
            np.maximum(base_at, 1e-12, out=base_at)
            gain = (pg * np.log1p(c * gw / base_at)).sum(axis=1)
            kl = p_log_p - float(np.sum(p_s * np.log(base[support]))) - gain
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
            np.add.at(list_mix, gidx[pick], gw[pick])
        rel_sum += rel[pick]
    return chosen
