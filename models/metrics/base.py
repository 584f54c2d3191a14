"""The shape every ranking metric shares, river-style: `update` with one evaluation point, `get` the value so far."""

from __future__ import annotations

from abc import ABC, abstractmethod


class RankMetric(ABC):
    """The mean, over evaluation points, of what the relevant item's rank is worth (0.0 before any point)."""

    def __init__(self) -> None:
        self.total = 0.0
        self.points = 0

    @abstractmethod
    def value(self, rank: int | None) -> float:
        """What one evaluation point with this rank contributes."""

    def update(self, rank: int | None) -> float:
        """Count one evaluation point; returns its value."""
        value = self.value(rank)
        self.total += value
        self.points += 1
        return value

    def get(self) -> float:
        return self.total / self.points if self.points else 0.0
