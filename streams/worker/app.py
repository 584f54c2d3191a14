"""The Faust app factory: topics, the table, the recommender, the catalog feed, agents, timers and web views.

`create_app(settings)` builds one self-contained app (nothing is registered at import time), so tests and tools can
build several. What the embedded noida-db broker needs of a worker: README's "The embedded broker and its known gaps".
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Sequence
from typing import Any, cast

import mode
from faust.types import Message
from faust.types.enums import ProcessingGuarantee

from streamrec.models.events import CatalogItem, Limits
from streamrec.models.item_model import content_only_model
from streamrec.models.recommender import StreamRecommender
from streamrec.streams.internals.batching import BatchingApp
from streamrec.streams.internals.consumer_state import started_consumer
from streamrec.streams.internals.producer_buffer import Delivered, Records
from streamrec.streams.internals.state_healing import DiscardedState, register_healing_store
from streamrec.streams.internals.table_writes import TableWrites
from streamrec.streams.internals.tables import PromptTableManager
from streamrec.streams.kafka.admin import CATALOG, PLAYS, RATINGS, RECOMMENDATIONS, SEARCHES, USER_DELETIONS
from streamrec.streams.kafka.security import faust_credentials
from streamrec.streams.settings import Settings
from streamrec.streams.worker import tables
from streamrec.streams.worker.agents import register_agents
from streamrec.streams.worker.broadcast_feed import BroadcastFeed
from streamrec.streams.worker.catalog_feed import CatalogFeed
from streamrec.streams.worker.catalog_validation import CatalogValidator
from streamrec.streams.worker.checkpoint import Checkpoint
from streamrec.streams.worker.item_log import ItemLog, ItemLogFeed, SignalOutbox, TopicSignalSender, item_signals_topic
from streamrec.streams.worker.model_store import ModelStore
from streamrec.streams.worker.observability import Metrics
from streamrec.streams.worker.ordered_app import TimeOrderedApp
from streamrec.streams.worker.outputs import DeadLetters, HandedOverLists, ListOutput, Rekeyer, SentLists
from streamrec.streams.worker.processor import EventProcessor, Outputs
from streamrec.streams.worker.profile_store import ProfileStore
from streamrec.streams.worker.progress import PartitionProgress
from streamrec.streams.worker.records import InputRecord, rekeyed_topic_name
from streamrec.streams.worker.runtime import Runtime
from streamrec.streams.worker.timers import register_timers
from streamrec.streams.worker.views import register_views

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> TimeOrderedApp:
    """A Faust app wired to `settings`; run it with `streams.cli.worker` (or `faust.Worker(app).execute...`)."""
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)  # Faust creates only the last level of its datadir
    app = TimeOrderedApp(
        settings.app_id,
        max_batch=settings.max_batch,
        order_wait_s=settings.order_wait_ms / 1000.0,
        empty_fetch_pause_s=settings.empty_fetch_pause_ms / 1000.0,
        TableManager=PromptTableManager,
        stop_grace_s=settings.stop_grace_s,
        leave_group_on_stop=settings.leave_group_on_stop,
        # A getmany returns all that was fetched: capped, it returns whole partitions one after another, and on a
        # backlog the time-ordered hold then waits a whole batch's reading for the partitions left out.
        broker_max_poll_records=None,
        broker=[f"kafka://{server.strip()}" for server in settings.bootstrap_servers.split(",") if server.strip()],
        broker_credentials=faust_credentials(settings),
        store=register_healing_store(),  # RocksDB; a partition's state at odds with its changelog is rebuilt
        datadir=str(data_dir / settings.app_id),
        web_host=settings.web_host,
        web_bind=settings.web_host,
        web_port=settings.web_port,
        canonical_url=f"http://{_advertised_host(settings.web_host)}:{settings.web_port}",
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        consumer_auto_offset_reset="earliest",
        consumer_group_instance_id=settings.instance_id,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_s / 3),  # Faust's default, or a third
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
    app.on_state_discarded = lambda state: _count_discarded(metrics, state)
    profiles_table = tables.profiles_table(app, settings)
    producer = _WorkerProducer(app)
    # A batch's profiles go to RocksDB and the changelog at once, unless the threaded producer (no hand-over) sends,
    # or under exactly_once, where Faust sends changelog records through its transactional producers and persists
    # their offsets at the commit.
    guarantee: object = app.conf.processing_guarantee  # Faust types the setting as the enum's class
    per_record = app.conf.producer_threaded or guarantee == ProcessingGuarantee.EXACTLY_ONCE
    stored_profiles = (
        tables.TableProfiles(profiles_table)
        if per_record
        else tables.BatchedTableProfiles(profiles_table, TableWrites(profiles_table, producer.hand_over))
    )
    profiles = ProfileStore(stored_profiles, decoded=settings.decoded_profiles)
    models = ModelStore(settings.model_dir)
    loaded = models.load_latest_with_path()
    model_path, model = loaded if loaded else (None, content_only_model())
    # The item side is the fold of the item-signal log (one state for every worker): learning emits to `outbox`.
    outbox = SignalOutbox()
    recommender = StreamRecommender(settings.stream_params(), model, profiles, item_signals=outbox.add)
    recommender.item_side.position = 0
    metrics.set_model(model.version)
    log.info("item model: %s (%s)", model.version, model_path or "no artifact, content only")

    def add_items(items: Sequence[tuple[CatalogItem, int]]) -> None:
        recommender.add_items(items)
        metrics.catalog_items.set(len(recommender.catalog) - len(recommender.catalog.removed))

    def remove_items(item_ids: Sequence[str]) -> None:
        removed = recommender.remove_items(item_ids)
        metrics.catalog_items.set(len(recommender.catalog) - len(recommender.catalog.removed))
        metrics.items_removed.inc(len(removed))
        processor.note_removed(removed)  # the lists held that name them are ranked again

    limits = Limits(max_event_bytes=settings.max_event_bytes, max_future_skew_ms=settings.max_future_skew_ms)
    feed = CatalogFeed(
        settings.bootstrap_servers,
        CATALOG,
        add_items,
        remove=remove_items,
        limits=limits,
        client_id=f"{settings.app_id}-catalog-feed",
    )
    # Raw bytes in and out: events are validated by models.events, not by a Faust codec. The names' order is
    # the order of a viewer's events with equal timestamps: one searches, then watches, then rates; a deletion
    # request goes after what its viewer did at the same moment. All are keyed by user id with as many partitions,
    # so Faust's assignor gives a worker the same partitions of each (a viewer's requests reach their profile).
    user_topics = (SEARCHES, PLAYS, RATINGS, USER_DELETIONS)
    input_topics = app.topic(*user_topics, key_type=bytes, value_type=bytes)
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
    signals_spec = item_signals_topic(settings.app_id, settings.replication_factor)
    item_feed = ItemLogFeed(
        settings.bootstrap_servers,
        signals_spec,
        recommender.item_side.apply,
        client_id=f"{settings.app_id}-item-log",
        after=feed.wait_ready,
        metrics=metrics,
    )
    signals_topic = app.topic(signals_spec.name, key_type=bytes, value_type=bytes, partitions=1)
    item_log = ItemLog(outbox, TopicSignalSender(signals_topic, producer.send_pending), item_feed)
    # Lists leave as whole batches per partition, unless the threaded producer (no hand-over) sends them.
    lists: ListOutput = (
        SentLists(recommendations)
        if app.conf.producer_threaded
        else HandedOverLists(RECOMMENDATIONS, producer.hand_over)
    )
    dead_letters = DeadLetters(dlq_topic)
    recent_lists = tables.RecentLists(settings.recent_lists)
    processor = EventProcessor(
        recommender=recommender,
        profiles=profiles,
        feed=feed,
        metrics=metrics,
        outputs=Outputs(lists, recent_lists, dead_letters, Rekeyer(rekeyed)),
        checkpoint=Checkpoint(lists=lists, profiles=profiles, producer=producer, offsets=_ConsumerOffsets(app)),
        limits=limits,
        coalesce=settings.coalesce,
        item_log=item_log,
        owned_partitions=lambda: _owned_partitions(app, {*user_topics, rekeyed_topic_name(settings.app_id)}),
    )
    validator = CatalogValidator(
        dead_letters=dead_letters, metrics=metrics, limits=limits, last_offsets=processor.last_offsets
    )
    register_agents(app, processor, validator, input_topics=input_topics, rekeyed=rekeyed, catalog=catalog_topic)
    rt = Runtime(
        settings,
        recommender,
        metrics,
        feed,
        models,
        stored_profiles,
        recent_lists,
        processor.last_offsets,
        model_path,
        progress=PartitionProgress(settings.stuck_after_s),
    )
    # Started with the app, before the producer and consumer; the agents wait for `feed.ready` anyway.
    app.add_dependency(_FeedService(feed))
    app.add_dependency(_FeedService(item_feed))
    register_timers(app, rt, profiles_table, processor.refresh_lists)
    register_views(app, rt)
    return app


class _FeedService(mode.Service):
    """Runs a feed (the catalog, the item-signal log) for as long as the app runs."""

    def __init__(self, feed: BroadcastFeed, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.feed = feed

    async def on_start(self) -> None:
        await self.feed.start()

    async def on_stop(self) -> None:
        await self.feed.stop()


class _WorkerProducer:
    """The worker producer's sending calls (`DrainingProducer`: it is created with the worker, after the app)."""

    def __init__(self, app: BatchingApp) -> None:
        self.app = app

    async def flush(self) -> None:
        await self.app.draining_producer.flush()

    async def send_pending(self) -> asyncio.Future[None]:
        return await self.app.draining_producer.send_pending()

    def hand_over(self, topic: str, records: Records, delivered: Delivered | None = None) -> None:
        self.app.draining_producer.hand_over(topic, records, delivered)


class _ConsumerOffsets:
    """Acks through the app's batching consumer."""

    def __init__(self, app: BatchingApp) -> None:
        self.app = app

    def acknowledge(self, records: Sequence[InputRecord]) -> None:
        self.app.acknowledge(cast(Sequence[Message], records))  # a batch handler's records are the consumer's


def _count_discarded(metrics: Metrics, state: DiscardedState) -> None:
    metrics.state_discarded.labels(table=state.table, reason=state.reason).inc()


def _owned_partitions(app: BatchingApp, topics: set[str]) -> set[int]:
    """The partitions of `topics` assigned to this worker now (none before the consumer exists)."""
    consumer = started_consumer(app)
    if consumer is None:
        return set()
    return {tp.partition for tp in consumer.assignment() if tp.topic in topics}


def _advertised_host(web_host: str) -> str:
    # table_route forwards to the owner's canonical URL; a wildcard bind address is not reachable.
    return socket.gethostname() if web_host in ("0.0.0.0", "::", "") else web_host
