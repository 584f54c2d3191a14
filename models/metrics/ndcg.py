"""NDCG@k with one relevant item per evaluation point: 1/log2(rank + 1) within the top k, averaged."""

from __future__ import annotations

from streamrec.models.metrics.base import RankMetric
from streamrec.models.metrics.ranks import ndcg_at_k


class NDCG(RankMetric):
    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k

    def value(self, rank: int | None) -> float:
        return ndcg_at_k(rank, self.k)
