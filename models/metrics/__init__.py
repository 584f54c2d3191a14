"""Metrics for one relevant item per evaluation point (prequential evaluation), one object per metric: `update`
with each point, `get` the value so far (river's `metrics`)."""

from streamrec.models.metrics.base import RankMetric
from streamrec.models.metrics.calibration import (
    CALIBRATION_ALPHA,
    Miscalibration,
    UserMiscalibration,
    genre_mix,
    miscalibration,
)
from streamrec.models.metrics.coverage import Coverage
from streamrec.models.metrics.exposure import (
    TOP_FRACTION,
    CreatorExposure,
    ItemExposure,
    gini,
    top_share,
    total_variation,
)
from streamrec.models.metrics.hit_rate import HitRate
from streamrec.models.metrics.mrr import MRR
from streamrec.models.metrics.ndcg import NDCG
from streamrec.models.metrics.ranks import hit_at_k, ndcg_at_k, rank_of, reciprocal_rank
from streamrec.models.metrics.reasons import ReasonCheck, ReasonsTrue

__all__ = [
    "CALIBRATION_ALPHA",
    "MRR",
    "NDCG",
    "TOP_FRACTION",
    "Coverage",
    "CreatorExposure",
    "HitRate",
    "ItemExposure",
    "Miscalibration",
    "RankMetric",
    "ReasonCheck",
    "ReasonsTrue",
    "UserMiscalibration",
    "genre_mix",
    "gini",
    "hit_at_k",
    "miscalibration",
    "ndcg_at_k",
    "rank_of",
    "reciprocal_rank",
    "top_share",
    "total_variation",
]
