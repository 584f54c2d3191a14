"""HR@k: the share of evaluation points whose relevant item is in the list's top k, overall and over the latest
points."""

from __future__ import annotations

from collections import deque

from streamrec.models.metrics.base import RankMetric
from streamrec.models.metrics.ranks import hit_at_k


class HitRate(RankMetric):
    def __init__(self, k: int, window: int = 5000) -> None:
        super().__init__()
        self.k = k
        self._recent: deque[float] = deque(maxlen=window)
        self._recent_sum = 0.0

    def value(self, rank: int | None) -> float:
        return hit_at_k(rank, self.k)

    def update(self, rank: int | None) -> float:
        hit = super().update(rank)
        recent = self._recent
        if len(recent) == recent.maxlen:
            self._recent_sum -= recent[0]
        recent.append(hit)
        self._recent_sum += hit
        return hit

    def rolling(self) -> float:
        """HR@k over the last `window` evaluation points (0.0 before any)."""
        return self._recent_sum / len(self._recent) if self._recent else 0.0
