"""Exposure caps: no single genre or creator may take more than its share of a list."""

from __future__ import annotations

import math
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
