"""The worker's agents: user events -> profile update -> ranked list on `recommendations`; catalog validation.

User events arrive in batches (`streams.internals.batching`: Faust's consumer, tables and commits, without its
per-record stream path). Per batch (`EventProcessor.handle_batch`):
1. wait (once) until the catalog feed has applied the catalog as of the worker's start;
2. per record, in order: validate with `models.events.parse_user_event`; on `unknown_item` first catch the
   catalog feed up with the catalog's *current* end and validate again, so an item published just before
   its first viewer's event is not rejected by a race; `Rejected` -> dead letter +
   `streamrec_events_rejected_total`; any other exception -> dead letter `internal_error` + log; the
   worker never crashes and never drops silently;
3. a record without a key is validated, then forwarded (raw bytes, original timestamp, origin in headers)
   to the internal topic `<app_id>-rekeyed-events` keyed by its `user_id`, so the profile update happens on
   the worker that owns the user's partition (and the list lands in the user's `recommendations` partition);
4. `learn_one` (a duplicate returns False: counted in `streamrec_events_duplicate_total`, nothing else);
   profiles come from a `ProfileOverlay`, so a user's profile is decoded once and written (changelogged) once
   per batch however many of its events the batch holds;
5. one list per user with new events (coalesced: the list reflects all of them; its `event_ids` names
   them, `trigger_event_id` is the last), ranked for all such users at once and published to
   `recommendations`. With `coalesce=False` (STREAMREC_COALESCE=false) every event gets its own list, ranked
   right after the event is learned, as the prequential protocol has it.

A batch is in time order across the input topics (`streams.internals.batching`), so a viewer's play and the rating
that follows it are applied in that order although they travel on different topics.

Delivery is at-least-once: Faust flushes the producer (changelogs, lists, dead letters, forwards) before it
commits input offsets. A redelivered event is a duplicate for `learn_one` (event-id dedupe in the profile),
so it changes no profile and publishes no second list; a redelivered bad record is dead-lettered again.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from faust.types import TopicT

from streamrec.models.base import Recommendation, recommendation_json
from streamrec.models.events import (
    ErrorCode,
    Limits,
    Rejected,
    UserEvent,
    parse_catalog_item,
    parse_user_event,
)
from streamrec.models.profile import ProfileOverlay, UserProfile
from streamrec.models.recommender import StreamRecommender
from streamrec.streams.internals.batching import BatchingApp, partition_context
from streamrec.streams.internals.producer_buffer import Records
from streamrec.streams.worker.catalog_feed import CatalogFeed
from streamrec.streams.worker.dlq import INTERNAL_ERROR, Source, dead_letter, encode
from streamrec.streams.worker.observability import Metrics
from streamrec.streams.worker.tables import ProfileStore, RecentLists

log = logging.getLogger(__name__)

YIELD_AFTER_S = 0.02  # longest stretch of record handling between two yields to the event loop
RANK_CHUNK = 256  # users ranked (and published) between two yields
# Batches this large (a worker catching up) hand their output to the producer in the background: its ~60 MB per
# 100,000 records at MovieLens fill aiokafka's buffers, so handing it over waits for the broker (~0.9 s with the
# event loop idle); the next batch learns meanwhile. The pipeline ran 9-13% faster.
BACKGROUND_FLUSH_MIN = 10_000

# Headers of a re-keyed copy: where the original record lives (for dead letters and metrics).
H_TOPIC, H_PARTITION, H_OFFSET = "streamrec-source-topic", "streamrec-source-partition", "streamrec-source-offset"


def rekeyed_topic_name(app_id: str) -> str:
    return f"{app_id}-rekeyed-events"


def _always(_item_id: str) -> bool:
    return True


@dataclass(slots=True)
class Incoming:
    """One input record as the processor sees it (independent of Faust's event type)."""

    kind: str  # ratings | plays | searches
    source: Source  # the original record (for a re-keyed copy: where the producer wrote it)
    key: bytes | None
    value: bytes | None
    timestamp_ms: int  # Kafka timestamp of the original record (producer time)
    rekeyed: bool = False  # a copy from the re-keyed topic: the original record had no key

    @property
    def source_key(self) -> bytes | None:
        return None if self.rekeyed else self.key


@dataclass(slots=True)
class _Pending:
    """A user's events applied in this batch, waiting for the user's list."""

    message: Any  # the user's last record: its partition is the user's
    event_ids: list[str]
    record_ts_ms: list[int]


class EventProcessor:
    def __init__(
        self,
        *,
        recommender: StreamRecommender,
        profiles: ProfileStore,
        feed: CatalogFeed,
        metrics: Metrics,
        recommendations_topic: TopicT,  # raw key/value
        recent_lists: RecentLists,
        dlq_topic: TopicT,  # raw key/value
        rekeyed_topic: TopicT,  # raw key/value
        limits: Limits,
        coalesce: bool = True,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        flush_output: Callable[[], Awaitable[None]] | None = None,
        background_flush_min: int = BACKGROUND_FLUSH_MIN,
        send_pending: Callable[[], Awaitable[asyncio.Future[None]]] | None = None,
        hand_over: Callable[[str, Records], None] | None = None,
    ) -> None:
        self.recommender = recommender
        self.coalesce = coalesce
        self.profiles = profiles
        self.feed = feed
        self.metrics = metrics
        self.recommendations_topic = recommendations_topic
        self.recent_lists = recent_lists
        self.dlq_topic = dlq_topic
        self.rekeyed_topic = rekeyed_topic
        self.limits = limits
        self.clock_ms = clock_ms
        self._flush_output = flush_output  # the producer's flush: everything queued, acknowledged
        self.background_flush_min = background_flush_min
        self._send_pending = send_pending
        # Lists leave as whole batches per partition (the producer's `hand_over`), else one by one through Faust.
        self._hand_over = hand_over
        self._lists: defaultdict[int, list[tuple[bytes, bytes]]] = defaultdict(list)  # this batch's, by partition
        self._sending: asyncio.Future[None] | None = None  # the last batch's output being acknowledged
        self.last_offsets: dict[tuple[str, int], int] = {}  # consumer lag: last handled offset per partition
        self._frozen = False  # start-up objects moved to the collector's permanent generation (first batch)

    # -- user events -------------------------------------------------------------------------------------
    async def handle_batch(self, messages: Sequence[Any]) -> None:
        """Records of the input topics and of the re-keyed topic, in time order; never raises (except
        cancellation): what can't be handled is dead-lettered."""
        if not self._frozen:
            await self.feed.wait_ready()
            # A large catalog's item index, before the first list waits on it: built in a thread (faiss trains
            # without the GIL), so the event loop goes on (health, heartbeats, reading, the catalog feed) meanwhile.
            vectors = self.recommender.item_vectors  # taken here: the feed changes the catalog on this thread
            await asyncio.to_thread(self.recommender.prepare_ranking, vectors)
            self.metrics.item_index_builds.set(self.recommender.index_builds)
            # The catalog, models and Faust's own objects live as long as the worker: keep them out of every
            # garbage collection from now on (the collector walks all tracked objects of a generation it scans).
            gc.freeze()
            self._frozen = True
        started = time.perf_counter()
        self._lists.clear()  # a batch that did not finish is handled again, its lists with it
        batch = ProfileOverlay(self.profiles)
        pending: dict[str, _Pending] = {}  # users whose list is still to be published
        owners: dict[str, Any] = {}  # a record of each user learned from: its partition is the user's
        per_topic: Counter[str] = Counter()  # for the processing-time histogram
        unreported: Counter[str] = Counter()  # handled, not yet in `events_consumed` (reported as the batch goes)
        self.recommender.profiles = batch
        try:
            yielded = started
            # The batch's embedding updates are applied together when it ends (the same profiles, bit for bit).
            with self.recommender.learning_batch():
                for message in messages:
                    unreported[message.topic] += 1
                    self.last_offsets[(message.topic, message.partition)] = message.offset
                    await self._handle_message(message, batch, pending, owners)
                    if time.perf_counter() - yielded > YIELD_AFTER_S:
                        self._report_consumed(unreported, per_topic)
                        await asyncio.sleep(0)  # let the web views, timers and the consumer thread's callbacks run
                        yielded = time.perf_counter()
        finally:
            self.recommender.profiles = self.profiles
            self._report_consumed(unreported, per_topic)
        profiles = {user: batch.get(user) for user in pending}  # before the flush forgets them
        # The table writes (RocksDB + changelog), each in the user's partition.
        batch.flush(around=lambda user: partition_context(owners[user]))
        await self._publish(pending, profiles)
        if self._lists and self._hand_over is not None:
            self._hand_over(self.recommendations_topic.get_topic_name(), dict(self._lists))
            self._lists.clear()
        await self._send_output(len(messages))
        per_record = (time.perf_counter() - started) / max(len(messages), 1)
        for topic in per_topic:
            self.metrics.processing_seconds.labels(topic=topic).observe(per_record)

    async def _send_output(self, records: int) -> None:
        """The batch's lists, changelog records and dead letters leave now: the producer's sending only gets the
        event loop between the handler's steps, so on a live stream lists otherwise waited seconds for it (until a
        commit's flush). Their acknowledgement is awaited while the next batch runs, which waits for it before it
        sends its own (one batch's output in flight). Measured on a live stream, waiting was 5-10 ms of a 15-25 ms
        batch with the loop idle; at a backlog ~0.9 s of a 100,000-record batch (its ~60 MB)."""
        if self._sending is not None:
            await asyncio.shield(self._sending)  # a cancelled batch leaves it in flight
            self._sending = None
        if self._send_pending is not None and records < self.background_flush_min:
            self._sending = asyncio.ensure_future(self._acknowledged(await self._send_pending()))
            for _ in range(3):  # aiokafka's sender drains its batches, then writes the requests: before the next batch
                await asyncio.sleep(0)
        elif records >= self.background_flush_min:
            # A large batch's output fills aiokafka's buffers, so even handing it over waits for the broker.
            self._sending = asyncio.ensure_future(self.flush_output())
            await asyncio.sleep(0)  # the flush starts now
        else:
            await self.flush_output()  # no way to send without waiting for the acknowledgement

    async def flush_output(self) -> None:
        """Wait until everything queued for sending (lists, changelog records, dead letters) is acknowledged. A
        failure here loses nothing (the commit flushes again before it commits offsets): it is logged."""
        if self._flush_output is None:
            return
        try:
            await self._flush_output()
        except Exception:
            log.exception("flushing the batch's output failed; the next commit flushes again")

    async def _acknowledged(self, acks: asyncio.Future[None]) -> None:
        """Wait for sent output's acknowledgement. A failure loses nothing (the commit flushes again before it
        commits offsets): it is logged."""
        try:
            await acks
        except Exception:
            log.exception("sending the batch's output failed; the next commit flushes again")

    def _report_consumed(self, unreported: Counter[str], reported: Counter[str]) -> None:
        for topic, count in unreported.items():
            self.metrics.events_consumed.labels(topic=topic).inc(count)
        reported.update(unreported)
        unreported.clear()

    async def _handle_message(
        self, message: Any, batch: ProfileOverlay, pending: dict[str, _Pending], owners: dict[str, Any]
    ) -> None:
        try:
            record = incoming_from(message)
        except Exception as exc:  # unreadable origin headers on the internal topic: still a dead letter
            log.exception("cannot read %s[%d]@%d", message.topic, message.partition, message.offset)
            record = Incoming(message.topic, _source(message), message.key, message.value, _ts_ms(message))
            await self._dead_letter(record, INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")
            return
        try:
            if not record.key:
                self._rekey(record)
                return
            try:
                event = self._parse(record, item_exists=self.recommender.catalog.__contains__)
            except Rejected as rejected:
                if rejected.code != ErrorCode.UNKNOWN_ITEM:
                    raise
                event = await self._validated_after_catch_up(record)
            user = event.user_id
            if batch.holds(user):
                learned = self.recommender.learn_one(event)
            else:
                with partition_context(message):  # the first read of the profile: from the user's partition
                    learned = self.recommender.learn_one(event)
            if not learned:
                self.metrics.events_duplicate.labels(topic=record.kind).inc()
                return
            owners[user] = message
            entry = pending.get(user)
            if entry is None:
                pending[user] = _Pending(message, [event.event_id], [record.timestamp_ms])
            else:
                entry.message = message
                entry.event_ids.append(event.event_id)
                entry.record_ts_ms.append(record.timestamp_ms)
            if not self.coalesce:
                # One list per event, ranked right after it is learned (as the prequential protocol has it).
                self._publish_chunk([user], pending, {user: self.recommender.profile(user)})
                del pending[user]
        except Rejected as rejected:
            self.metrics.events_rejected.labels(topic=record.kind, reason=str(rejected.code)).inc()
            await self._dead_letter(record, str(rejected.code), rejected.message)
        except Exception as exc:
            src = record.source
            log.exception("internal error on %s[%d]@%d", src.topic, src.partition, src.offset)
            self.metrics.events_rejected.labels(topic=record.kind, reason=INTERNAL_ERROR).inc()
            await self._dead_letter(record, INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")

    def _rekey(self, record: Incoming) -> None:
        # Structure only: the catalog check happens on the owning worker, after the hop.
        event = self._parse(record, item_exists=_always)
        self.rekeyed_topic.send_soon(
            key=event.user_id.encode(),
            value=record.value,
            timestamp=record.timestamp_ms / 1000.0,  # keep the producer's time for freshness
            headers={
                H_TOPIC: record.kind.encode(),
                H_PARTITION: str(record.source.partition).encode(),
                H_OFFSET: str(record.source.offset).encode(),
            },
        )

    async def _validated_after_catch_up(self, record: Incoming) -> UserEvent:
        # The item may have been published a moment ago: catch up with the catalog's end, then retry.
        await self.feed.catch_up()
        event = self._parse(record, item_exists=self.recommender.catalog.__contains__)
        log.info("%s %s: its item arrived while catching up with the catalog", record.kind, event.event_id)
        return event

    def _parse(self, record: Incoming, item_exists: Callable[[str], bool]) -> UserEvent:
        return parse_user_event(
            record.kind,
            record.value or b"",  # a tombstone is "not JSON"
            key=record.key,
            record_ts_ms=record.timestamp_ms,
            now_ms=self.clock_ms(),
            item_exists=item_exists,
            limits=self.limits,
        )

    async def _publish(self, pending: dict[str, _Pending], profiles: dict[str, UserProfile | None]) -> None:
        """One list per user with new events, ranked a chunk of users at a time, each on the user's partition."""
        users = list(pending)
        for start in range(0, len(users), RANK_CHUNK):
            self._publish_chunk(users[start : start + RANK_CHUNK], pending, profiles)
            await asyncio.sleep(0)

    def _publish_chunk(
        self, users: list[str], pending: dict[str, _Pending], profiles: dict[str, UserProfile | None]
    ) -> None:
        recommender = self.recommender
        started = time.perf_counter()
        lists = recommender.rank_lists([profiles[user] for user in users]).json_items()
        self.metrics.ranking_seconds.observe((time.perf_counter() - started) / len(users))
        self.metrics.item_index_builds.set(recommender.index_builds)
        now_ms = self.clock_ms()
        version = recommender.item_model.version
        for user_id, items in zip(users, lists, strict=True):
            entry = pending[user_id]
            payload = list_payload(user_id, entry.event_ids, version, items, now_ms)
            if self._hand_over is not None:
                self._lists[entry.message.partition].append((user_id.encode(), payload))
            else:
                self.recommendations_topic.send_soon(
                    key=user_id.encode(), value=payload, partition=entry.message.partition
                )
            self.recent_lists.put(user_id, payload)
            for ts in entry.record_ts_ms:
                self.metrics.freshness_seconds.observe(max(0.0, (now_ms - ts) / 1000.0))
        self.metrics.lists_published.inc(len(users))

    # -- catalog validation --------------------------------------------------------------------------------
    async def validate_catalog_batch(self, messages: Sequence[Any]) -> None:
        """Dead-letter the invalid records of a batch of catalog records (in the consumer group: each record once,
        not once per worker). Never raises: validation goes on; the feed applies valid items independently."""
        for message in messages:
            try:
                await self.validate_catalog(message)
            except Exception:
                log.exception("catalog validation failed for offset %s", message.offset)
            self.note_offset(message.topic, message.partition, message.offset)

    async def validate_catalog(self, message: Any) -> None:
        """Dead-letter an invalid catalog record."""
        record = Incoming("catalog", _source(message), message.key, message.value, _ts_ms(message))
        self.metrics.events_consumed.labels(topic="catalog").inc()
        if message.value is None:
            return  # a tombstone deletes an item; the feed skips it (models can't remove items yet)
        try:
            parse_catalog_item(message.value, limits=self.limits)
        except Rejected as rejected:
            self.metrics.events_rejected.labels(topic="catalog", reason=str(rejected.code)).inc()
            await self._dead_letter(record, str(rejected.code), rejected.message)

    # -- dead letters --------------------------------------------------------------------------------------
    async def _dead_letter(self, record: Incoming, code: str, message: str) -> None:
        """Never raises: if even the dead letter can't be queued, the record is logged in full instead."""
        letter = dead_letter(
            record.source,
            error_code=code,
            error_message=message,
            key=record.source_key,
            payload=record.value,
            rejected_at_ms=self.clock_ms(),
        )
        try:
            # Keyed like the source (a re-keyed copy: by user id), so one user's dead letters stay in order.
            await self.dlq_topic.send(key=record.key, value=encode(letter))
        except Exception:
            log.exception("could not dead-letter %s", letter)

    def note_offset(self, topic: str, partition: int, offset: int) -> None:
        self.last_offsets[(topic, partition)] = offset


def incoming_from(message: Any) -> Incoming:
    """An input-topic record, or a re-keyed copy (origin taken from its headers)."""
    headers = _headers(message) if message.headers else {}
    if H_TOPIC in headers:
        source = Source(headers[H_TOPIC].decode(), int(headers[H_PARTITION].decode()), int(headers[H_OFFSET].decode()))
        return Incoming(source.topic, source, message.key, message.value, _ts_ms(message), rekeyed=True)
    return Incoming(message.topic, _source(message), message.key, message.value, _ts_ms(message))


def _headers(message: Any) -> dict[str, bytes]:
    raw = message.headers or {}
    pairs = raw.items() if isinstance(raw, dict) else raw  # Faust passes a list of (name, value) pairs
    return {str(name): bytes(value) for name, value in pairs if value is not None}


def _source(message: Any) -> Source:
    return Source(message.topic, int(message.partition), int(message.offset))


def _ts_ms(message: Any) -> int:
    # Faust gives seconds as a float; the contracts use epoch milliseconds.
    return round(float(message.timestamp) * 1000) if message.timestamp else int(time.time() * 1000)


def list_payload(
    user_id: str | None,
    event_ids: Sequence[str],
    model_version: str,
    items: Sequence[Recommendation | dict[str, Any]],
    now_ms: int,
) -> bytes:
    """A list as published on `recommendations` (JSON bytes). `event_ids`: the user's events this list is the
    first to reflect (several when a batch held more than one), in order; the last is `trigger_event_id`.
    `items`: `Recommendation`s, or their published form already (`RankedLists.json_items`)."""
    return orjson.dumps(
        {
            "user_id": user_id,
            "generated_at": now_ms,
            "model_version": model_version,
            "trigger_event_id": event_ids[-1] if event_ids else None,
            "event_ids": list(event_ids),
            "items": [item if isinstance(item, dict) else recommendation_json(item) for item in items],
        }
    )


def register_agents(
    app: BatchingApp, processor: EventProcessor, *, input_topics: TopicT, rekeyed: TopicT, catalog: TopicT
) -> None:
    """Input topics and re-keyed copies (`processor.handle_batch`), and catalog validation
    (`processor.validate_catalog_batch`), all in batches: Faust's per-record agent path costs ~120 µs a record,
    12 s for a new group's first pass over a 100,000-item catalog, during which no event was handled."""
    app.batch_agent(input_topics, processor.handle_batch)
    app.batch_agent(rekeyed, processor.handle_batch)
    # Validation doesn't depend on the events: outside their time order (nor does it hold them back).
    app.batch_agent(catalog, processor.validate_catalog_batch, in_time_order=False)
