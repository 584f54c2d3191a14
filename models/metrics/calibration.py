"""Steck's (2018) miscalibration of a list against its user's taste, and its mean over evaluation points.

Genre mixes: an item with genres G contributes 1/|G| to each genre in G, and a set of items is the (uniform)
average of its items' mixes; items without genres are left out of the average.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

CALIBRATION_ALPHA = 0.01  # Steck's smoothing: q~ = (1 - alpha) q + alpha p


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


class UserMiscalibration:
    """`miscalibration(p, q, alpha)` for one user's p and many q (the lists several systems hold for the user).

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


class Miscalibration:
    """The mean miscalibration of the lists scored, over the evaluation points whose user has a history with
    genres (None before any: undefined without one)."""

    def __init__(self) -> None:
        self.total = 0.0
        self.points = 0

    def update(self, value: float) -> None:
        """Count one list's miscalibration (`miscalibration`, or a `UserMiscalibration` of it)."""
        self.total += value
        self.points += 1

    def get(self) -> float | None:
        return self.total / self.points if self.points else None
