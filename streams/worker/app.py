"""The Faust app factory: topics, tables, the recommender, the catalog feed, agents, timers and web views.

`create_app(settings)` builds one self-contained app (nothing is registered at import time), so tests and
tools can build several. `runtime(app)` returns the pieces (recommender, feed, metrics, ...) of an app.

Checked against the embedded noida-db 0.2.3 broker (see docs in streams/broker.py): Faust's consumer group
with its own assignor protocol, rebalancing between two workers, changelog and internal topic creation,
record headers, table recovery from changelogs (after a restart and after deleting the local RocksDB
state) and `table_route` between two workers all work. What needed care:
- topics auto-created by the broker get 1 partition, so the rekeyed topic is declared by Faust (internal,
  `settings.partitions`), and input/output topics must exist (`streamrec topics create`) before the worker;
- compaction never runs on noida-db, so table recovery from an empty state dir reads every version ever
  written to the changelogs (correct, only slower than on a real cluster);
- a worker killed with SIGKILL stays in its group until the broker restarts, and the next rebalance waits for
  it: stop workers with SIGTERM/SIGINT (`streamrec worker` shuts down cleanly on both);
- an offset commit sent while the group rebalances is answered with IllegalGeneration (a real broker accepts
  it while the rebalance is being prepared). aiokafka then drops its member id and rejoins as a new member,
  the join waits the rebalance timeout (60 s) for the old id, and under load the group was seen to wedge
  (re-joining every 60 s, no leader ever syncing). Faust commits on every partition revocation, so on
  noida-db add or remove workers while they are idle (nothing left to commit), or restart them all.
  Static membership (STREAMREC_FAUST_CONSUMER_GROUP_INSTANCE_ID, unique per worker) avoids the wedge, but
  then a stopped worker never leaves the group on noida-db and its partitions are never taken over.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faust
import mode

from streamrec.models.events import CatalogItem, Limits
from streamrec.models.item_model import ItemModel, content_only_model
from streamrec.models.recommender import StreamRecommender
from streamrec.streams.internals.batching import BatchingApp
from streamrec.streams.internals.producer_buffer import Records
from streamrec.streams.kafka.admin import CATALOG, PLAYS, RATINGS, RECOMMENDATIONS, SEARCHES
from streamrec.streams.settings import Settings
from streamrec.streams.worker import tables
from streamrec.streams.worker.agents import EventProcessor, register_agents, rekeyed_topic_name
from streamrec.streams.worker.catalog_feed import CatalogFeed
from streamrec.streams.worker.model_store import ModelStore
from streamrec.streams.worker.observability import Metrics
from streamrec.streams.worker.tables import BytesTable

log = logging.getLogger(__name__)

MODEL_CHECK_INTERVAL_S = 30.0
TABLE_KEYS_INTERVAL_S = 15.0
LAG_INTERVAL_S = 10.0
_EXACT_COUNT_LIMIT = 100_000  # count table keys exactly below this estimate, else report the estimate


@dataclass(slots=True)
class Runtime:
    settings: Settings
    recommender: StreamRecommender
    metrics: Metrics
    feed: CatalogFeed
    processor: EventProcessor
    models: ModelStore
    profiles: tables.ProfileStore
    recent_lists: tables.RecentLists  # the view's copy of the last lists published
    model_path: Path | None = None


_RUNTIMES: dict[int, Runtime] = {}


def runtime(app: faust.App) -> Runtime:
    return _RUNTIMES[id(app)]


def create_app(settings: Settings) -> faust.App:
    """A Faust app wired to `settings`; run it with `streams.cli.worker` (or `faust.Worker(app).execute...`)."""
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)  # Faust creates only the last level of its datadir
    app = BatchingApp(
        settings.app_id,
        max_batch=settings.max_batch,
        order_wait_s=settings.order_wait_ms / 1000.0,
        empty_fetch_pause_s=settings.empty_fetch_pause_ms / 1000.0,
        TableManager=tables.PromptTableManager,
        stop_grace_s=settings.stop_grace_s,
        # A getmany returns all that was fetched: capped, it returns whole partitions one after another, and on a
        # backlog the time-ordered hold then waits a whole batch's reading for the partitions left out.
        broker_max_poll_records=None,
        broker=[f"kafka://{server.strip()}" for server in settings.bootstrap_servers.split(",") if server.strip()],
        store="rocksdb://",
        datadir=str(data_dir / settings.app_id),
        web_host=settings.web_host,
        web_bind=settings.web_host,
        web_port=settings.web_port,
        canonical_url=f"http://{_advertised_host(settings.web_host)}:{settings.web_port}",
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        consumer_auto_offset_reset="earliest",
        # Lists and changelog records leave in a few large compressed requests instead of many small ones: each
        # request costs the broker and the worker's event loop, and the bytes cost the broker (noida-db keeps all
        # it holds in memory and saves it whole every ~1.5 s).
        producer_linger=0.005,
        producer_max_batch_size=512 * 1024,
        producer_compression_type=None if settings.compression == "none" else settings.compression,
        key_serializer="raw",
        value_serializer="raw",
        autodiscover=False,
        # Faust lets environment variables override these arguments (WEB_PORT, BROKER_URL, TIMEZONE, ...), which
        # would silently beat the STREAMREC_* settings; with a prefix only STREAMREC_FAUST_* variables do, and
        # they stay available for tuning (e.g. STREAMREC_FAUST_BROKER_REBALANCE_TIMEOUT=20).
        env_prefix="STREAMREC_FAUST_",
    )
    metrics = Metrics()
    app.on_read = lambda topic, count: metrics.records_read.labels(topic=topic).inc(count)
    params = settings.stream_params()
    profiles_table = tables.profiles_table(app, settings)
    profiles = tables.ProfileStore(profiles_table)
    models = ModelStore(settings.model_dir)
    loaded = models.load_latest_with_path()
    model_path, model = loaded if loaded else (None, content_only_model())
    recommender = StreamRecommender(params, model, profiles)
    metrics.set_model(model.version)
    log.info("item model: %s (%s)", model.version, model_path or "no artifact, content only")

    def add_items(items: Sequence[tuple[CatalogItem, int]]) -> None:
        recommender.add_items(items)
        metrics.catalog_items.set(len(recommender.catalog))

    limits = Limits(max_event_bytes=settings.max_event_bytes, max_future_skew_ms=settings.max_future_skew_ms)
    feed = CatalogFeed(
        settings.bootstrap_servers, CATALOG, add_items, limits=limits, client_id=f"{settings.app_id}-catalog-feed"
    )
    # Raw bytes in and out: events are validated by models.events, not by a Faust codec. The names' order is
    # the order of a viewer's events with equal timestamps: one searches, then watches, then rates.
    input_topics = app.topic(SEARCHES, PLAYS, RATINGS, key_type=bytes, value_type=bytes)
    rekeyed = app.topic(
        rekeyed_topic_name(settings.app_id),
        key_type=bytes,
        value_type=bytes,
        partitions=settings.partitions,
        internal=True,  # Faust creates it with `partitions` (noida-db would auto-create it with 1)
    )
    catalog_topic = app.topic(CATALOG, key_type=bytes, value_type=bytes)
    dlq_topic = app.topic(settings.dlq_topic, key_type=bytes, value_type=bytes)
    recommendations = app.topic(RECOMMENDATIONS, key_type=bytes, value_type=bytes)
    recent_lists = tables.RecentLists(settings.recent_lists)
    processor = EventProcessor(
        recommender=recommender,
        profiles=profiles,
        feed=feed,
        metrics=metrics,
        recommendations_topic=recommendations,
        recent_lists=recent_lists,
        coalesce=settings.coalesce,
        dlq_topic=dlq_topic,
        rekeyed_topic=rekeyed,
        limits=limits,
        flush_output=lambda: app.producer.flush(),  # the producer is created with the worker
        send_pending=lambda: app.producer.send_pending(),  # type: ignore[attr-defined]
        hand_over=None if app.conf.producer_threaded else _hand_over(app),
    )
    register_agents(app, processor, input_topics=input_topics, rekeyed=rekeyed, catalog=catalog_topic)
    rt = Runtime(settings, recommender, metrics, feed, processor, models, profiles, recent_lists, model_path)
    _RUNTIMES[id(app)] = rt

    # Started with the app, before the producer and consumer; the agents wait for `feed.ready` anyway.
    app.add_dependency(_FeedService(feed))
    _register_timers(app, rt, profiles_table)
    from streamrec.streams.worker.views import register_views  # views import app-level helpers; avoid an import cycle

    register_views(app, rt)
    return app


class _FeedService(mode.Service):
    """Runs the catalog feed for as long as the app runs."""

    def __init__(self, feed: CatalogFeed, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.feed = feed

    async def on_start(self) -> None:
        await self.feed.start()

    async def on_stop(self) -> None:
        await self.feed.stop()


def _register_timers(app: faust.App, rt: Runtime, profiles_table: BytesTable) -> None:
    # An exception escaping a Faust timer crashes the whole app, hence the guards.
    @app.timer(MODEL_CHECK_INTERVAL_S)  # type: ignore[untyped-decorator]
    async def refresh_model() -> None:
        with _logged("model refresh"):
            check_for_new_model(rt)

    @app.timer(TABLE_KEYS_INTERVAL_S)  # type: ignore[untyped-decorator]
    async def count_table_keys() -> None:
        with _logged("table key count"):
            rt.metrics.table_keys.labels(table=tables.PROFILES_TABLE).set(count_keys(profiles_table))

    @app.timer(LAG_INTERVAL_S)  # type: ignore[untyped-decorator]
    async def consumer_lag() -> None:
        with _logged("consumer lag"):
            update_consumer_lag(app, rt)


@contextmanager
def _logged(what: str) -> Iterator[None]:
    try:
        yield
    except Exception:
        log.exception("%s failed", what)


def check_for_new_model(rt: Runtime) -> bool:
    """Hot-swap the item model if a newer artifact was saved; True if swapped."""
    latest = rt.models.latest_path()
    if latest is None or latest == rt.model_path:
        return False
    try:
        model: ItemModel = rt.models.load(latest)
    except Exception:
        log.exception("cannot load model artifact %s; keeping %s", latest, rt.recommender.item_model.version)
        rt.model_path = latest  # don't retry the same broken file every interval
        return False
    rt.recommender.set_item_model(model)
    rt.model_path = latest
    rt.metrics.set_model(model.version)
    log.info("item model hot-swapped to %s (%s)", model.version, latest)
    return True


def count_keys(table: BytesTable) -> int:
    """Keys in the local RocksDB partitions (active + standby): RocksDB's estimate when large, else exact."""
    dbs = getattr(table.data, "_dbs", None)  # faust's RocksDB store: partition -> rocksdict.Rdict
    if not dbs:
        return 0
    estimate = 0
    for db in dbs.values():
        try:
            estimate += int(db.property_int_value("rocksdb.estimate-num-keys") or 0)
        except Exception:
            estimate = 0
            break
    if estimate > _EXACT_COUNT_LIMIT:
        return estimate
    offset_key = b"__faust\0offset__"  # faust keeps each partition's changelog offset under this key
    # Rdict.__iter__ is refused in raw mode (faust opens the DBs raw); keys() works.
    return sum(1 for db in dbs.values() for key in db.keys() if key != offset_key)  # noqa: SIM118


def update_consumer_lag(app: faust.App, rt: Runtime) -> None:
    """Lag per owned input partition: the high watermark of the last fetch minus the next offset to handle
    (after the last handled record, else the committed offset). Uses what the consumer already knows: no
    broker round trip; partitions not fetched from yet have no series."""
    consumer = getattr(app, "_consumer", None)  # None until the worker has started its consumer
    if consumer is None:
        return
    committed: dict[Any, int | None] = getattr(consumer, "_committed_offset", {})
    rt.metrics.consumer_lag.clear()
    for tp in consumer.assignment():
        if tp.topic not in _LAG_TOPICS and tp.topic != rekeyed_topic_name(rt.settings.app_id):
            continue
        try:
            highwater = consumer.highwater(tp)
        except Exception:
            continue
        last = rt.processor.last_offsets.get((tp.topic, tp.partition))
        # Nothing handled or committed yet: a new group starts at the log start (0 unless retention deleted some).
        next_offset = last + 1 if last is not None else committed.get(tp) or 0
        if highwater is None:
            continue
        rt.metrics.consumer_lag.labels(topic=tp.topic, partition=str(tp.partition)).set(max(highwater - next_offset, 0))


_LAG_TOPICS = frozenset({RATINGS, PLAYS, SEARCHES, CATALOG})


def _advertised_host(web_host: str) -> str:
    # table_route forwards to the owner's canonical URL; a wildcard bind address is not reachable.
    return socket.gethostname() if web_host in ("0.0.0.0", "::", "") else web_host


def _hand_over(app: faust.App) -> Callable[[str, Records], None]:
    """The worker producer's `hand_over` (the producer is created with the worker, after the app)."""

    def hand_over(topic: str, records: Records) -> None:
        app.producer.hand_over(topic, records)  # type: ignore[attr-defined]

    return hand_over
