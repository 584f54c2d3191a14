"""The pieces of a running worker that its timers and web views use."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from streamrec.models.recommender import StreamRecommender
from streamrec.streams.settings import Settings
from streamrec.streams.worker.catalog_feed import CatalogFeed
from streamrec.streams.worker.model_store import ModelStore
from streamrec.streams.worker.observability import Metrics
from streamrec.streams.worker.progress import PartitionProgress
from streamrec.streams.worker.tables import RecentLists, TableProfiles


@dataclass(slots=True)
class Runtime:
    settings: Settings
    recommender: StreamRecommender
    metrics: Metrics
    feed: CatalogFeed
    models: ModelStore
    profiles: TableProfiles  # the stored profiles (never a batch's overlay)
    recent_lists: RecentLists  # the view's copy of the last lists published
    last_offsets: dict[tuple[str, int], int]  # last handled offset per input partition (consumer lag)
    model_path: Path | None = None
    progress: PartitionProgress = field(kw_only=True)  # fed by the lag timer; read by /ready
