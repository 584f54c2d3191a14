"""The item-signal log: what every viewer's events teach the item side (co-occurrence, popularity, trending), in one
single-partition topic that every worker folds in the same order, so all workers hold the same item state whatever
their number, and a restarted worker rebuilds it by reading the log again.

A batch's signals are written, and acknowledged, before its profiles are: a profile that reached its changelog
always has its signals in the log. A worker whose records are the next ones its feed is to fold (no other worker
wrote in between: always, with one worker) folds them as written instead of reading them back: the same signals in
the same log order, one broker round trip fewer a batch.

A batch handled again (a crash, a rebalance) writes some signals twice; each names the input record it came from,
and the fold skips one whose record it already folded (a viewer's records on one partition are read in order).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import orjson
from aiokafka import TopicPartition
from faust.types import TopicT

from streamrec.models.item_signals import ItemSignal
from streamrec.streams.kafka.admin import TopicSpec, create_topics
from streamrec.streams.worker.broadcast_feed import BroadcastFeed
from streamrec.streams.worker.observability import Metrics
from streamrec.streams.worker.records import InputRecord

log = logging.getLogger(__name__)

SIGNALS_PER_RECORD = 2_000
RECORD_BYTES = 256 * 1024  # a log record stays well under the producer's and the broker's default 1 MB limit
FOLD_IDLE_POLL_S = 0.02  # how often an idle worker looks for other workers' signals
FOLD_RECORDS_PER_TURN = 5  # log records folded between two turns of the event loop (each up to SIGNALS_PER_RECORD)

Source = tuple[str, int, int]  # the input record a signal came from: topic, partition, offset


def item_signals_topic_name(app_id: str) -> str:
    return f"{app_id}-item-signals"


def item_signals_topic(app_id: str, replication_factor: int = 1) -> TopicSpec:
    """One partition (one order for every worker), kept for ever (it is the item state)."""
    return TopicSpec(
        item_signals_topic_name(app_id), 1, configs={"retention.ms": "-1"}, replication_factor=replication_factor
    )


class SignalOutbox:
    """The signals a batch's learning emits (`add`, the recommender's `item_signals`), each with its input record
    (`at`, called before the record is learnt)."""

    def __init__(self) -> None:
        self._source: Source = ("", -1, -1)
        self.entries: list[tuple[Source, ItemSignal]] = []

    def at(self, record: InputRecord) -> None:
        self._source = (record.topic, record.partition, record.offset)

    def add(self, signal: ItemSignal) -> None:
        self.entries.append((self._source, signal))

    def take(self) -> list[tuple[Source, ItemSignal]]:
        entries, self.entries = self.entries, []
        return entries


def encode_signals(entries: Sequence[tuple[Source, ItemSignal]]) -> list[bytes]:
    """Log records of at most `SIGNALS_PER_RECORD` signals and about `RECORD_BYTES` each: `{"sources": [[topic,
    partition], ...], "signals": [[source, offset, ts, item_id | null, [recent item ids], [feedback]?], ...]}` (the
    feedback on the blend only where there is some)."""
    records: list[bytes] = []
    sources: dict[tuple[str, int], int] = {}
    rows: list[bytes] = []
    size = 0
    for (topic, partition, offset), signal in entries:
        if rows and (len(rows) >= SIGNALS_PER_RECORD or size >= RECORD_BYTES):
            records.append(_record(sources, rows))
            sources, rows, size = {}, [], 0
        index = sources.setdefault((topic, partition), len(sources))
        fields = [index, offset, signal.ts, signal.item_id, signal.recent]
        row = orjson.dumps([*fields, signal.feedback] if signal.feedback else fields)
        rows.append(row)
        size += len(row) + 1
    if rows:
        records.append(_record(sources, rows))
    return records


def _record(sources: dict[tuple[str, int], int], rows: list[bytes]) -> bytes:
    return b'{"sources":' + orjson.dumps(list(sources)) + b',"signals":[' + b",".join(rows) + b"]}"


def decode_signals(value: bytes) -> list[tuple[Source, ItemSignal]]:
    document = orjson.loads(value)
    sources = [(str(topic), int(partition)) for topic, partition in document["sources"]]
    decoded = []
    for index, offset, ts, item_id, recent, *feedback in document["signals"]:
        topic, partition = sources[index]
        hits = tuple(int(h) for h in feedback[0]) if feedback else ()
        decoded.append(((topic, partition, int(offset)), ItemSignal(int(ts), item_id, tuple(recent), hits)))
    return decoded


class FoldOnce:
    """Which signals the fold applies: a signal whose input record was folded already (its partition's offsets
    only grow in the log, a batch handled again writes them again) is skipped."""

    def __init__(self) -> None:
        self._folded: dict[tuple[str, int], int] = {}  # input partition -> the highest offset folded

    def first_time(self, source: Source) -> bool:
        topic, partition, offset = source
        if offset <= self._folded.get((topic, partition), -1):
            return False
        self._folded[(topic, partition)] = offset
        return True


class SignalSender(Protocol):
    async def send(self, values: Sequence[bytes]) -> list[int]:
        """Write the records to the log and wait until the broker has acknowledged them; returns their offsets."""
        ...


class TopicSignalSender:
    """Writes log records through the worker's producer (Faust's topic: partition 0 of the log); `send_now` makes
    the producer send what it holds at once (`DrainingProducer.send_pending`): the batch waits for the
    acknowledgement, so the producer's linger would be time the batch waits for nothing."""

    def __init__(self, topic: TopicT, send_now: Callable[[], Awaitable[object]]) -> None:
        self.topic = topic
        self._send_now = send_now

    async def send(self, values: Sequence[bytes]) -> list[int]:
        acks = [await self.topic.send(value=value, partition=0) for value in values]
        await self._send_now()
        return [int(metadata.offset) for metadata in await asyncio.gather(*acks)]


class ItemLog:
    """The processor's side of the log: a batch's signals are written, then folded back into this worker's item side
    before the batch's lists are ranked (so a viewer's list reflects what their own events taught the item side,
    as with one worker and no log)."""

    def __init__(self, outbox: SignalOutbox, sender: SignalSender, feed: ItemLogFeed) -> None:
        self.outbox = outbox
        self.sender = sender
        self.feed = feed

    async def wait_ready(self) -> None:
        """Until the log as of the worker's start is folded: the item state rebuilt."""
        await self.feed.wait_ready()

    def at(self, record: InputRecord) -> None:
        self.outbox.at(record)

    async def publish(self) -> None:
        entries = self.outbox.take()
        if entries:
            records = encode_signals(entries)
            offsets = await self.sender.send(records)  # acknowledged before the batch's profiles are written
            # Folded up to this batch's own signals: as written if they are the next in the log, else read back up
            # to them (the acknowledgements say where they are: no need to ask the broker for the log's end).
            if not self.feed.fold_written(offsets, records):
                await self.feed.fold_up_to(max(offsets) + 1)

    def drop(self) -> None:
        """An unfinished batch's signals: it is handled again."""
        self.outbox.take()


class ItemLogFeed(BroadcastFeed):
    """Folds the item-signal log into the worker's item side (`fold(signal, position)`, position counting the
    signals folded), skipping a signal whose input record was folded already."""

    def __init__(
        self,
        bootstrap_servers: str,
        topic: TopicSpec,
        fold: Callable[[ItemSignal, int], None],
        *,
        client_id: str,
        after: Callable[[], Awaitable[None]],
        metrics: Metrics,
    ) -> None:
        """`after`: what folding waits for (the catalog: a signal names items by id)."""
        super().__init__(
            bootstrap_servers,
            topic.name,
            client_id=client_id,
            idle_poll_s=FOLD_IDLE_POLL_S,
            records_per_turn=FOLD_RECORDS_PER_TURN,
        )
        self.spec = topic
        self._fold = fold
        self._after = after
        self._metrics = metrics
        metrics.item_state_age_seconds.set_function(lambda: self.age_seconds() or 0.0)
        self._once = FoldOnce()
        self.position = 0  # signals folded
        self.duplicates = 0  # signals skipped: their input record was folded already
        self._duplicates_reported = 0
        self.last_record_ms: int | None = None  # when the last record folded was written (the item state's age)

    async def start(self) -> None:
        await create_topics(self._bootstrap, [self.spec])
        await super().start()

    async def _run(self) -> None:
        await self._after()
        await super()._run()

    def _apply_records(self, messages: list[Any]) -> None:
        for message in messages:
            if message.value is None:
                continue
            if message.offset < self._positions.get(TopicPartition(message.topic, message.partition), 0):
                continue  # folded as written (`fold_written`) while this fetch was on its way
            self._apply_value(message.value, message.offset, int(message.timestamp))
        self._report_duplicates()

    def _apply_value(self, value: bytes, offset: int, timestamp_ms: int) -> None:
        try:
            decoded = decode_signals(value)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, IndexError):
            log.exception("item log: record %d is not item signals; skipped", offset)
            return
        for source, signal in decoded:
            if not self._once.first_time(source):
                self.duplicates += 1
                continue
            self.position += 1
            self._fold(signal, self.position)
        self.applied += 1
        self.last_record_ms = timestamp_ms
        self._metrics.item_log_hop_seconds.observe(self.age_seconds() or 0.0)

    def _report_duplicates(self) -> None:
        self._metrics.item_signals_duplicate.inc(self.duplicates - self._duplicates_reported)
        self._duplicates_reported = self.duplicates

    def fold_written(self, offsets: Sequence[int], values: Sequence[bytes]) -> bool:
        """Fold records this worker has just written (`values` at `offsets`, acknowledged) as they are, if they are
        the next records of the log to fold (none written in between); False, folding nothing, otherwise."""
        consumer = self._consumer
        tp = TopicPartition(self.topic, 0)
        first = offsets[0] if offsets else -1
        if (
            consumer is None
            or not self.ready
            or first != self._positions.get(tp, 0)
            or list(offsets) != list(range(first, first + len(offsets)))
        ):
            return False
        now_ms = int(time.time() * 1000)
        for offset, value in zip(offsets, values, strict=True):
            self._apply_value(value, offset, now_ms)
        self._report_duplicates()
        self._advanced(tp, first + len(offsets))
        self._fetched()
        return True

    def _fetched(self) -> None:
        self._metrics.item_log_lag.set(self.lag())

    async def fold_up_to(self, end: int, timeout_s: float = 10.0) -> bool:
        """Fold the log up to `end` (the offset after the last record wanted)."""
        return await self.catch_up_to({TopicPartition(self.topic, 0): end}, timeout_s)

    def lag(self) -> int:
        """Log records written (as of the last fetch) but not yet folded."""
        return sum(max(0, end - self._positions.get(tp, 0)) for tp, end in self.highwaters().items())

    def age_seconds(self, now_ms: int | None = None) -> float | None:
        """How long ago the last signal folded was written (None before any)."""
        if self.last_record_ms is None:
            return None
        now = int(time.time() * 1000) if now_ms is None else now_ms
        return max(0.0, (now - self.last_record_ms) / 1000.0)
