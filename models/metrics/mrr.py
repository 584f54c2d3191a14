"""MRR: 1/rank of the relevant item over the whole list scored (0 when absent), averaged."""

from __future__ import annotations

from streamrec.models.metrics.base import RankMetric
from streamrec.models.metrics.ranks import reciprocal_rank


class MRR(RankMetric):
    def value(self, rank: int | None) -> float:
        return reciprocal_rank(rank)
