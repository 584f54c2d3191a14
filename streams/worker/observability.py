"""Prometheus metrics of a worker; names and labels exactly as in docs/architecture.md.

Each `Metrics` owns its own `CollectorRegistry` (not the process-global default), so several apps can be
built in one process (tests) without "Duplicated timeseries" errors; `/metrics` renders that registry, with the
client's standard `process_*` metrics (CPU seconds, resident memory, open files) of the worker's process.

The per-topic counters start with a series at 0 for every input topic (and every dead-letter reason), so a query
or an alert on them has data before the first increment and `rate()` sees that increment. Counters and histograms
have no `*_created` series (creation timestamps no query here uses; they would double the series count).
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from streamrec.models.events import ErrorCode
from streamrec.streams.internals.state_healing import REASONS as STATE_DISCARD_REASONS
from streamrec.streams.kafka.admin import CATALOG, INPUT_TOPICS
from streamrec.streams.worker.tables import PROFILES_TABLE

disable_created_metrics()  # type: ignore[no-untyped-call]

# The classic text format (what `generate_latest` writes); prometheus-client's CONTENT_TYPE_LATEST is 1.0.0.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

# Per-event work is sub-millisecond to tens of milliseconds; freshness spans queueing and catch-up too.
BATCH_PHASES = ("learn", "item_log", "publish", "commit")  # a batch's phases, in order
_PROCESSING_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_FRESHNESS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        # prometheus-client appends `_total` to counter names.
        self.events_consumed = Counter("streamrec_events_consumed", "Input records consumed", ["topic"], registry=r)
        self.records_read = Counter(
            "streamrec_records_read",
            "Input records read from Kafka (each is held for its turn in time order, then consumed)",
            ["topic"],
            registry=r,
        )
        self.events_rejected = Counter(
            "streamrec_events_rejected", "Input records dead-lettered", ["topic", "reason"], registry=r
        )
        self.events_duplicate = Counter(
            "streamrec_events_duplicate", "Valid events already applied (same event_id)", ["topic"], registry=r
        )
        self.processing_seconds = Histogram(
            "streamrec_processing_seconds",
            "Wall time to handle one input record",
            ["topic"],
            buckets=_PROCESSING_BUCKETS,
            registry=r,
        )
        self.freshness_seconds = Histogram(
            "streamrec_freshness_seconds",
            "Publish wall time minus the input record's Kafka timestamp",
            buckets=_FRESHNESS_BUCKETS,
            registry=r,
        )
        self.lists_published = Counter("streamrec_lists_published", "Recommendation lists published", registry=r)
        self.ranking_seconds = Histogram(
            "streamrec_ranking_seconds", "Wall time of one rank() call", buckets=_PROCESSING_BUCKETS, registry=r
        )
        self.batch_phase_seconds = Histogram(
            "streamrec_batch_phase_seconds",
            "Wall time of one phase of a batch: learn (its records), item_log (write, acknowledgement, fold), "
            "publish (ranking and handing over its lists), commit (its profiles and output)",
            ["phase"],
            buckets=_PROCESSING_BUCKETS,
            registry=r,
        )
        for phase in BATCH_PHASES:  # exported from the start: a rate sees the first batch
            self.batch_phase_seconds.labels(phase=phase)
        self.table_keys = Gauge("streamrec_table_keys", "Keys in a local table", ["table"], registry=r)
        self.catalog_items = Gauge("streamrec_catalog_items", "Items in this worker's catalog", registry=r)
        self.item_index_builds = Gauge(
            "streamrec_item_index_builds",
            "Times this worker built its item index (catalogs past STREAMREC_EXACT_MAX_ITEMS; 0: every item scored)",
            registry=r,
        )
        self.model_info = Gauge(
            "streamrec_model_info", "The item model in use (value 1)", ["model_version"], registry=r
        )
        self.consumer_lag = Gauge(
            "streamrec_consumer_lag", "High watermark minus next offset to process", ["topic", "partition"], registry=r
        )
        self.item_log_lag = Gauge(
            "streamrec_item_log_lag", "Item-signal log records written but not yet folded by this worker", registry=r
        )
        self.item_state_age_seconds = Gauge(
            "streamrec_item_state_age_seconds",
            "Wall time since the last item-signal log record this worker folded was written",
            registry=r,
        )
        self.item_log_hop_seconds = Histogram(
            "streamrec_item_log_hop_seconds",
            "Fold wall time minus the item-signal log record's Kafka timestamp (the extra hop's delay)",
            buckets=_FRESHNESS_BUCKETS,
            registry=r,
        )
        self.item_signals_duplicate = Counter(
            "streamrec_item_signals_duplicate",
            "Item signals skipped by the fold: their input record was folded already (a batch handled again)",
            registry=r,
        )
        self.partition_stuck = Gauge(
            "streamrec_partition_stuck",
            "1: an assigned input partition with records left whose position has not moved for STREAMREC_STUCK_AFTER_S",
            ["topic", "partition"],
            registry=r,
        )
        self.users_deleted = Counter(
            "streamrec_users_deleted",
            "Deletion requests applied (had_profile: whether the viewer had a profile to erase)",
            ["had_profile"],
            registry=r,
        )
        self.items_removed = Counter(
            "streamrec_items_removed", "Items removed from this worker's catalog by a catalog tombstone", registry=r
        )
        self.lists_refreshed = Counter(
            "streamrec_lists_refreshed",
            "Held lists ranked again and republished because an item they named left the catalog",
            registry=r,
        )
        self.state_discarded = Counter(
            "streamrec_state_discarded",
            "Table partitions whose local state was dropped and restored from the changelog (reason: "
            "ahead_of_changelog, unreadable)",
            ["table", "reason"],
            registry=r,
        )
        self._start_at_zero()
        ProcessCollector(registry=r)  # what the default registry would show: the worker's CPU time, memory

    def _start_at_zero(self) -> None:
        for topic in INPUT_TOPICS:
            self.events_consumed.labels(topic=topic)
            self.records_read.labels(topic=topic)
            for code in ErrorCode:
                self.events_rejected.labels(topic=topic, reason=str(code))
            if topic != CATALOG:  # catalog records are upserts: never duplicates
                self.events_duplicate.labels(topic=topic)
                self.processing_seconds.labels(topic=topic)
        for had_profile in ("true", "false"):
            self.users_deleted.labels(had_profile=had_profile)
        for reason in STATE_DISCARD_REASONS:
            self.state_discarded.labels(table=PROFILES_TABLE, reason=reason)

    def set_model(self, version: str) -> None:
        """Exactly one `streamrec_model_info` series: the model in use."""
        self.model_info.clear()
        self.model_info.labels(model_version=version).set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)
