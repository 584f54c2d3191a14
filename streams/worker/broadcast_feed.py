"""A topic every worker reads whole: all partitions from the beginning, group-less (nothing committed), followed
for as long as the worker runs. The catalog and the item-signal log are read this way."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from streamrec.streams.kafka.admin import describe_topics
from streamrec.streams.kafka.security import environment_security

log = logging.getLogger(__name__)

_METADATA_TIMEOUT_S = 30.0
IDLE_POLL_S = 1.0
# Records applied per turn of the event loop: Faust's start waits for turns while a large topic loads.
RECORDS_PER_TURN = 500


class BroadcastFeed:
    """Applies a topic's records to the worker, following the topic for as long as the worker runs; a subclass
    says how (`_apply_records`, a fetch at a time).

    Three catch-up guarantees: `wait_ready()`: the end offsets seen at start have been applied; `catch_up()`: the
    end offsets as of *now* have been applied; `catch_up_to(ends)`: offsets the caller knows of (its own writes'
    acknowledgements) have been applied, without asking the broker for the end. Records are applied a fetch of at
    most `RECORDS_PER_TURN` at a time, so the rest of the worker (Faust's start, the group join, table recovery) goes
    on while a large topic loads.

    Once caught up the feed pauses its partitions and looks at the end offsets every `idle_poll_s`, or fetches at
    once when a catch-up wants offsets it has not applied: an idle fetcher would otherwise spin, as noida-db answers
    an empty fetch at once.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        *,
        client_id: str,
        idle_poll_s: float = IDLE_POLL_S,
        records_per_turn: int = RECORDS_PER_TURN,
    ) -> None:
        self.topic = topic
        self._bootstrap = bootstrap_servers
        self._client_id = client_id
        self._idle_poll_s = idle_poll_s
        self._records_per_turn = records_per_turn
        self._consumer: Any = None
        self._partitions: list[Any] = []
        self._positions: dict[Any, int] = {}  # next offset to apply, per partition
        self._progress = asyncio.Condition()
        self._ready = asyncio.Event()
        self._wake = asyncio.Event()  # a catch-up wants offsets beyond those applied
        self._wanted: dict[Any, int] = {}  # the offsets catch-ups wait for, per partition
        self._initial_ends: dict[Any, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._notifications: set[asyncio.Task[None]] = set()
        self.applied = 0
        self.skipped = 0

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            client_id=self._client_id,
            group_id=None,  # broadcast: no group, no commits, every partition
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            **environment_security(),
        )
        await consumer.start()
        try:
            partitions = await self._wait_for_partitions()
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            self._positions = {tp: await consumer.position(tp) for tp in partitions}
            self._initial_ends = await consumer.end_offsets(partitions)
        except BaseException:
            await consumer.stop()
            raise
        self._consumer, self._partitions = consumer, partitions
        log.info("%s feed: %d partitions, catching up to %s", self.topic, len(partitions), self._initial_ends)
        self._check_ready()
        self._task = asyncio.create_task(self._run(), name=f"{self.topic}-feed")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()

    async def wait_ready(self) -> None:
        """Return once the topic is applied up to the end offsets seen at start."""
        await self._ready.wait()

    async def catch_up(self, timeout_s: float = 10.0) -> bool:
        """Apply the topic up to its end offsets as of now; False if that did not happen in `timeout_s`."""
        if self._consumer is None:
            return False
        try:
            async with asyncio.timeout(timeout_s):
                ends: dict[Any, int] = await self._consumer.end_offsets(self._partitions)
                await self._wait_applied(ends)
            return True
        except TimeoutError:
            log.warning("%s feed did not reach the topic's end within %.1f s", self.topic, timeout_s)
            return False

    async def catch_up_to(self, ends: dict[Any, int], timeout_s: float = 10.0) -> bool:
        """Apply the topic up to `ends` (per partition: the offset after the last record wanted); False if that did
        not happen in `timeout_s`. One round trip fewer than `catch_up()` for a caller that knows the offsets."""
        if self._consumer is None:
            return False
        try:
            async with asyncio.timeout(timeout_s):
                await self._wait_applied(ends)
            return True
        except TimeoutError:
            log.warning("%s feed did not reach %s within %.1f s", self.topic, ends, timeout_s)
            return False

    async def _wait_applied(self, ends: dict[Any, int]) -> None:
        if self._reached(ends):
            return
        for tp, end in ends.items():
            self._wanted[tp] = max(end, self._wanted.get(tp, 0))
        self._wake.set()
        try:
            async with self._progress:
                await self._progress.wait_for(lambda: self._reached(ends))
        except asyncio.CancelledError:  # also how a timeout reaches here
            # Offsets that never came (a log cut short) must not keep the feed fetching: back to polling the end.
            self._wanted.clear()
            raise

    def _advanced(self, tp: Any, position: int) -> None:
        """A subclass applied a partition's records up to `position` without fetching them: the consumer goes on
        after them (dropping what it holds of them), and catch-ups waiting for them are told."""
        self._positions[tp] = position
        self._consumer.seek(tp, position)
        task = asyncio.get_running_loop().create_task(self._notify_progress())
        self._notifications.add(task)
        task.add_done_callback(self._notifications.discard)

    async def _notify_progress(self) -> None:
        async with self._progress:
            self._progress.notify_all()

    def _at_highwaters(self) -> bool:
        """Every partition applied up to its end as of its last fetch (a partition not fetched yet: not)."""
        consumer = self._consumer
        if consumer is None:
            return False
        for tp in self._partitions:
            end = consumer.highwater(tp)
            if end is None or self._positions.get(tp, 0) < end:
                return False
        return True

    def _reached(self, ends: dict[Any, int]) -> bool:
        return all(self._positions.get(tp, 0) >= end for tp, end in ends.items())

    def _check_ready(self) -> None:
        if not self._ready.is_set() and self._reached(self._initial_ends):
            log.info("%s feed ready: %d applied, %d skipped", self.topic, self.applied, self.skipped)
            self._ready.set()

    async def _run(self) -> None:
        consumer = self._consumer
        while True:
            try:
                batches = await consumer.getmany(timeout_ms=500, max_records=self._records_per_turn)
                self._apply_records([message for messages in batches.values() for message in messages])
                for tp, messages in batches.items():  # noted before the next await (a subclass applies some itself)
                    if messages:
                        self._positions[tp] = max(self._positions.get(tp, 0), messages[-1].offset + 1)
                # Positions move past transaction markers and compacted gaps too, so read them back.
                for tp in self._partitions:
                    self._positions[tp] = await consumer.position(tp)
                self._fetched()
            except asyncio.CancelledError:
                raise
            except Exception:  # keep following the topic; a transient broker error must not stop it
                log.exception("%s feed: fetch failed, retrying", self.topic)
                await asyncio.sleep(1.0)
                continue
            self._check_ready()
            await self._notify_progress()
            if self.ready and (not batches or self._at_highwaters()):
                # Caught up: paused until the topic grows. Left fetching, aiokafka's fetcher asks again at once
                # for as long as getmany waits, and noida-db answers an empty fetch at once.
                await self._idle(consumer)
            elif batches:
                await asyncio.sleep(0)  # getmany doesn't yield while records are buffered

    async def _idle(self, consumer: Any) -> None:
        """Paused until the topic has new records (the end looked at every `idle_poll_s`: the fetch that led here
        has just reported it), or a catch-up wants offsets not applied yet (fetched at once, without asking the
        broker for the end first)."""
        consumer.pause(*self._partitions)
        try:
            while True:
                self._wake.clear()
                if not self._reached(self._wanted):
                    return
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._idle_poll_s):
                        await self._wake.wait()
                if self._wake.is_set():
                    continue
                try:
                    ends: dict[Any, int] = await consumer.end_offsets(self._partitions)
                except Exception:
                    log.exception("%s feed: end offsets failed, fetching instead", self.topic)
                    return
                if not self._reached(ends):
                    return
        finally:
            consumer.resume(*self._partitions)

    def _apply_records(self, messages: list[Any]) -> None:
        raise NotImplementedError

    def _fetched(self) -> None:
        """After each fetch's records are applied and the positions read back."""

    def highwaters(self) -> dict[Any, int]:
        """Each partition's end offset as of the last fetch (a partition not fetched yet: its position)."""
        consumer = self._consumer
        if consumer is None:
            return {}
        ends = {tp: consumer.highwater(tp) for tp in self._partitions}
        return {tp: self._positions.get(tp, 0) if end is None else end for tp, end in ends.items()}

    async def _wait_for_partitions(self) -> list[Any]:
        # Asking the admin API (all-topics metadata) never auto-creates a missing topic.
        deadline = time.monotonic() + _METADATA_TIMEOUT_S
        while True:
            counts = await describe_topics(self._bootstrap, [self.topic])
            if self.topic in counts:
                return [TopicPartition(self.topic, p) for p in range(counts[self.topic])]
            if time.monotonic() >= deadline:
                raise RuntimeError(f"topic {self.topic!r} does not exist (create it: `streamrec topics create`)")
            await asyncio.sleep(0.5)
