"""Exposure caps: no single genre or creator may take more than its share of a list."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ExposureCaps:
    max_genre_share: float = 0.5
    max_creator_share: float = 0.2

    def limits(self, list_size: int) -> tuple[int, int]:
        """Max items per genre and per creator in a list of this size (at least 1 each)."""
        return (
            max(1, math.floor(self.max_genre_share * list_size)),
            max(1, math.floor(self.max_creator_share * list_size)),
        )


class ExposureLedger:
    """Counts a list's genres and creators as it is built, and tells whether one more item still fits."""

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
