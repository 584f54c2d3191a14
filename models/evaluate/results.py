"""What an evaluation reports: each system's metrics, HR over time, progress, and the list held at each point."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class HRPoint:
    events: int  # events processed (all kinds)
    eval_points: int
    cumulative: float  # HR@k over all evaluation points so far
    rolling: float  # HR@k over the last `rolling_window` evaluation points


@dataclass(frozen=True, slots=True)
class EvalResult:
    system: str
    k: int
    list_length: int  # MRR is computed over the whole held list of this length
    events: int
    eval_points: int
    hr: float
    ndcg: float
    mrr: float
    coverage: float
    miscalibration: float | None  # None when no evaluation point had a user history with genres
    miscalibration_points: int
    reasons_true: float  # share of top-k recommended items (at evaluation points) whose reasons all verify
    recommended_items: int  # top-k recommended items checked for reasons
    reason_kinds: Mapping[str, tuple[int, int]]  # kind -> (verified, given)
    seconds: float  # wall-clock time spent inside the system (add_item, learn_one, rank)
    cpu_seconds: float  # the same in CPU time (the evaluation is single-threaded)
    lists: int  # lists computed (rank calls)
    rolling_window: int  # evaluation points behind each `HRPoint.rolling`
    hr_over_time: tuple[HRPoint, ...] = field(default=())
    exposure_gini: float = 0.0  # Gini coefficient of item exposure (top-k appearances) over the catalog
    top_share: float = 0.0  # the share of exposure of the top 1% of the catalog
    creator_gap: float | None = None  # total variation between creators' exposure and consumption shares
    creator_head_ratio: float | None = None  # the 10 most consumed creators' exposure share / consumption share
    # creator -> (exposure share, consumption share): the plot's data, left out of `to_dict` (one row a creator)
    creator_shares: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        del out["creator_shares"]
        out["reason_kinds"] = {k: list(v) for k, v in self.reason_kinds.items()}
        out["hr_over_time"] = [asdict(p) for p in self.hr_over_time]
        return out


@dataclass(frozen=True, slots=True)
class ProgressInfo:
    events: int
    total: int | None
    eval_points: int
    hit_rates: Mapping[str, float]
    elapsed_seconds: float


@dataclass(frozen=True, slots=True)
class EvalPoint:
    """What a system's held list was at one evaluation point (for comparing two runs list by list)."""

    event_id: str  # the interaction's event id
    user_id: str
    item_id: str
    new_user: bool  # scored on the new-user list (no earlier event of u)
    items: tuple[str, ...]  # the held list as scored (history excluded, cut at the list length)
    rank: int | None  # 1-based position of item_id in `items`
