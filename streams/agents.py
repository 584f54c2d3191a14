"""The worker's agents: user events -> profile update -> ranked list on `recommendations`; catalog validation.

Per user-event record (`EventProcessor.handle`):
1. wait (once) until the catalog feed has applied the catalog as of the worker's start;
2. validate with `models.events.parse_user_event`; on `unknown_item` first catch the catalog feed up with
   the catalog's *current* end and validate again, so an item published just before its first viewer's
   event is not rejected by a race;
3. `Rejected` -> dead letter + `streamrec_events_rejected_total`; any other exception while handling the
   record -> dead letter `internal_error` + log; the agent never crashes and never drops silently;
4. a record without a key is validated, then forwarded (raw bytes, original timestamp, origin in headers) to
   the internal topic `<app_id>-rekeyed-events` keyed by its `user_id`, so the profile update happens on
   the worker that owns the user's partition (and the list lands in the user's `recommendations` partition);
5. `learn_one`; a duplicate (False) only counts `streamrec_events_duplicate_total`, publishes nothing;
6. `rank` and publish: writing the `lists` table *is* the publish (its changelog is `recommendations`).

Delivery is at-least-once: Faust flushes the producer (changelogs, dead letters, forwards) before it commits
input offsets. A redelivered event is a duplicate for `learn_one` (event-id dedupe in the profile), so it
changes no profile and publishes no second list; a redelivered bad record is dead-lettered again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import faust
import orjson
from faust.types import TopicT

from models.base import Recommendation
from models.events import (
    ErrorCode,
    Limits,
    Rejected,
    UserEvent,
    parse_catalog_item,
    parse_user_event,
)
from models.recommender import StreamRecommender
from streams.catalog_feed import CatalogFeed
from streams.dlq import INTERNAL_ERROR, Source, dead_letter, encode
from streams.observability import Metrics
from streams.tables import BytesTable

log = logging.getLogger(__name__)

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


class EventProcessor:
    def __init__(
        self,
        *,
        recommender: StreamRecommender,
        feed: CatalogFeed,
        metrics: Metrics,
        lists: BytesTable,  # user id bytes -> list JSON; changelog = recommendations
        dlq_topic: TopicT,  # raw key/value
        rekeyed_topic: TopicT,  # raw key/value
        limits: Limits,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.recommender = recommender
        self.feed = feed
        self.metrics = metrics
        self.lists = lists
        self.dlq_topic = dlq_topic
        self.rekeyed_topic = rekeyed_topic
        self.limits = limits
        self.clock_ms = clock_ms
        self.last_offsets: dict[tuple[str, int], int] = {}  # consumer lag: last handled offset per partition

    # -- user events -------------------------------------------------------------------------------------
    async def handle_message(self, message: Any) -> None:
        """One record of an input topic or of the re-keyed topic; never raises (except cancellation)."""
        try:
            record = incoming_from(message)
        except Exception as exc:  # unreadable origin headers on the internal topic: still a dead letter
            log.exception("cannot read %s[%d]@%d", message.topic, message.partition, message.offset)
            record = Incoming(message.topic, _source(message), message.key, message.value, _ts_ms(message))
            await self._dead_letter(record, INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")
            return
        await self.handle(record)

    async def handle(self, record: Incoming) -> None:
        """Handle one record completely; never raises (except cancellation)."""
        if not self.feed.ready:
            await self.feed.wait_ready()
        try:
            if not record.key:
                await self._rekey(record)
            else:
                await self._apply(record)
        except Rejected as rejected:
            self.metrics.events_rejected.labels(topic=record.kind, reason=str(rejected.code)).inc()
            await self._dead_letter(record, str(rejected.code), rejected.message)
        except Exception as exc:
            src = record.source
            log.exception("internal error on %s[%d]@%d", src.topic, src.partition, src.offset)
            self.metrics.events_rejected.labels(topic=record.kind, reason=INTERNAL_ERROR).inc()
            await self._dead_letter(record, INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")

    async def _rekey(self, record: Incoming) -> None:
        # Structure only: the catalog check happens on the owning worker, after the hop.
        event = self._parse(record, item_exists=_always)
        await self.rekeyed_topic.send(
            key=event.user_id.encode(),
            value=record.value,
            timestamp=record.timestamp_ms / 1000.0,  # keep the producer's time for freshness
            headers={
                H_TOPIC: record.kind.encode(),
                H_PARTITION: str(record.source.partition).encode(),
                H_OFFSET: str(record.source.offset).encode(),
            },
        )

    async def _apply(self, record: Incoming) -> None:
        try:
            event = self._parse(record, item_exists=self.recommender.catalog.__contains__)
        except Rejected as rejected:
            if rejected.code != ErrorCode.UNKNOWN_ITEM:
                raise
            # The item may have been published a moment ago: catch up with the catalog's end, then retry.
            await self.feed.catch_up()
            event = self._parse(record, item_exists=self.recommender.catalog.__contains__)
            log.info("%s %s: its item arrived while catching up with the catalog", record.kind, event.event_id)
        if not self.recommender.learn_one(event):
            self.metrics.events_duplicate.labels(topic=record.kind).inc()
            return
        self._publish(event, record)

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

    def _publish(self, event: UserEvent, record: Incoming) -> None:
        started = time.perf_counter()
        items = self.recommender.rank(event.user_id)
        self.metrics.ranking_seconds.observe(time.perf_counter() - started)
        now_ms = self.clock_ms()
        payload = list_payload(event.user_id, event.event_id, self.recommender.item_model.version, items, now_ms)
        self.lists[event.user_id.encode()] = payload  # the publish: changelog topic = recommendations
        self.metrics.lists_published.inc()
        self.metrics.freshness_seconds.observe(max(0.0, (now_ms - record.timestamp_ms) / 1000.0))

    # -- catalog validation --------------------------------------------------------------------------------
    async def validate_catalog(self, message: Any) -> None:
        """Dead-letter invalid catalog records (run by the group agent: once per record, not per worker)."""
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
    headers = _headers(message)
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
    user_id: str | None, trigger_event_id: str | None, model_version: str, items: list[Recommendation], now_ms: int
) -> bytes:
    """A list as published on `recommendations` (JSON bytes)."""
    return orjson.dumps(
        {
            "user_id": user_id,
            "generated_at": now_ms,
            "model_version": model_version,
            "trigger_event_id": trigger_event_id,
            "items": [_item_json(rec) for rec in items],
        }
    )


def _item_json(rec: Recommendation) -> dict[str, Any]:
    return {
        "item_id": rec.item_id,
        "rank": rec.rank,
        "score": rec.score,
        "reasons": [{**reason.evidence, "kind": reason.kind, "text": reason.text} for reason in rec.reasons],
    }


def register_agents(
    app: faust.App, processor: EventProcessor, *, input_topics: TopicT, rekeyed: TopicT, catalog: TopicT
) -> None:
    """Three agents: input topics, re-keyed copies (both through `processor.handle`), catalog validation."""

    async def process(stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            processor.metrics.events_consumed.labels(topic=message.topic).inc()
            started = time.perf_counter()
            await processor.handle_message(message)
            processor.metrics.processing_seconds.labels(topic=message.topic).observe(time.perf_counter() - started)
            processor.note_offset(message.topic, message.partition, message.offset)

    app.agent(input_topics, name="streamrec.user_events")(process)
    app.agent(rekeyed, name="streamrec.rekeyed_events")(process)

    async def validate(stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            try:
                await processor.validate_catalog(message)
            except Exception:  # validation must go on; the feed applies valid items independently
                log.exception("catalog validation failed for offset %s", message.offset)
            processor.note_offset(message.topic, message.partition, message.offset)

    app.agent(catalog, name="streamrec.catalog_validation")(validate)
