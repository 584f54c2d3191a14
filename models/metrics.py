"""Ranking and calibration metrics for one relevant item per evaluation point (prequential evaluation).

Ranks are 1-based positions of the held-out item in a list, `None` when the item is absent. Genre mixes follow
Steck (2018): an item with genres G contributes 1/|G| to each genre in G, and a set of items is the (uniform)
average of its items' mixes; items without genres are left out of the average.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

CALIBRATION_ALPHA = 0.01  # Steck's smoothing: q~ = (1 - alpha) q + alpha p


def rank_of(item_id: str, items: Sequence[str]) -> int | None:
    """1-based position of `item_id` in `items`, or None when absent."""
    if isinstance(items, list | tuple):  # the scan in C (the first equal item, as below)
        try:
            return items.index(item_id) + 1
        except ValueError:
            return None
    for pos, other in enumerate(items, start=1):
        if other == item_id:
            return pos
    return None


def hit_at_k(rank: int | None, k: int) -> float:
    """1.0 if the relevant item is within the top k, else 0.0."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return 1.0 if rank is not None and 1 <= rank <= k else 0.0


def ndcg_at_k(rank: int | None, k: int) -> float:
    """NDCG@k with one relevant item: 1/log2(rank + 1) within the top k (the ideal DCG is 1), else 0."""
    if hit_at_k(rank, k) == 0.0:
        return 0.0
    assert rank is not None
    return 1.0 / math.log2(rank + 1)


def reciprocal_rank(rank: int | None) -> float:
    """1/rank, 0 if absent. The list length it is cut at is the length of the list it was computed on."""
    if rank is None:
        return 0.0
    if rank < 1:
        raise ValueError(f"ranks are 1-based, got {rank}")
    return 1.0 / rank


def hit_rate(ranks: Iterable[int | None], k: int) -> float:
    """Mean of `hit_at_k` over evaluation points (0.0 for none)."""
    values = [hit_at_k(r, k) for r in ranks]
    return sum(values) / len(values) if values else 0.0


def mean_ndcg(ranks: Iterable[int | None], k: int) -> float:
    values = [ndcg_at_k(r, k) for r in ranks]
    return sum(values) / len(values) if values else 0.0


def mean_reciprocal_rank(ranks: Iterable[int | None]) -> float:
    values = [reciprocal_rank(r) for r in ranks]
    return sum(values) / len(values) if values else 0.0


def catalog_coverage(recommended: Iterable[str], catalog_size: int) -> float:
    """Distinct recommended items over the catalog size."""
    if catalog_size <= 0:
        return 0.0
    return len(set(recommended)) / catalog_size


def genre_mix(genre_lists: Iterable[Sequence[str]]) -> dict[str, float]:
    """Steck's p(g): the average over items (with at least one genre) of 1/|genres| per genre. Empty if none."""
    totals: dict[str, float] = {}
    n = 0
    for genres in genre_lists:
        unique = tuple(dict.fromkeys(genres))
        if not unique:
            continue
        n += 1
        share = 1.0 / len(unique)
        for g in unique:
            totals[g] = totals.get(g, 0.0) + share
    return {g: v / n for g, v in totals.items()} if n else {}


def miscalibration(p: Mapping[str, float], q: Mapping[str, float], alpha: float = CALIBRATION_ALPHA) -> float:
    """Steck's KL(p || q~), q~ = (1 - alpha) q + alpha p, summed over genres with p(g) > 0.

    p is the genre mix of the user's history, q that of the list. An empty q (a list without genres) gives
    log(1/alpha). Raises ValueError for an empty p (no history genres: miscalibration is undefined).
    """
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    total = 0.0
    seen = False
    for g, pg in p.items():
        if pg <= 0.0:
            continue
        seen = True
        qg = (1.0 - alpha) * q.get(g, 0.0) + alpha * pg
        total += pg * math.log(pg / qg)
    if not seen:
        raise ValueError("p is empty: miscalibration needs a user history with genres")
    return max(total, 0.0)


class Miscalibration:
    """`miscalibration(p, q, alpha)` for one p and many q (the lists several systems hold for one user).

    The term of a genre a list lacks depends on p alone: it is computed once, when a list first lacks the genre.
    Each value is the float `miscalibration` gives (the same expressions, summed in the same order), and the
    same errors are raised by the same call.
    """

    __slots__ = ("_alpha", "_genres", "_lacking")

    def __init__(self, p: Mapping[str, float], alpha: float = CALIBRATION_ALPHA) -> None:
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self._alpha = alpha
        self._genres = [(g, pg) for g, pg in p.items() if not pg <= 0.0]  # what `miscalibration` sums over
        if not self._genres:
            raise ValueError("p is empty: miscalibration needs a user history with genres")
        self._lacking: list[float | None] = [None] * len(self._genres)  # per genre: its term when q(g) = 0

    def __call__(self, q: Mapping[str, float]) -> float:
        alpha, lacking = self._alpha, self._lacking
        total = 0.0
        for at, (g, pg) in enumerate(self._genres):
            qg = q.get(g)
            if qg is not None:
                total += pg * math.log(pg / ((1.0 - alpha) * qg + alpha * pg))
                continue
            term = lacking[at]
            if term is None:
                term = lacking[at] = pg * math.log(pg / ((1.0 - alpha) * 0.0 + alpha * pg))
            total += term
        return max(total, 0.0)
