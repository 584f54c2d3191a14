"""A batch's end, in one place: its output leaves, then its offsets become committable.

The steps are quix-streams' `Checkpoint.commit`, in its order: the batch's outputs, its changelogs, the producer,
then the offsets. Delivery is at-least-once: a record is acked only after everything it caused was handed to the
producer, and Faust's offset commit (timer, rebalance, stop) flushes the producer before it commits
(`DrainingProducer.flush`: handed-over lists, queued changelog records, aiokafka's batches). A redelivered event is a
duplicate for `learn_one` (event-id dedupe in the profile), so it changes no profile and publishes no second list.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Protocol

from streamrec.streams.internals.routing import PartitionedRecord, partition_context
from streamrec.streams.worker.outputs import ListOutput
from streamrec.streams.worker.profile_store import ProfileStore
from streamrec.streams.worker.records import InputRecord

log = logging.getLogger(__name__)

# Batches this large (a worker catching up) hand their output to the producer in the background: it fills
# aiokafka's buffers, so even handing it over waits for the broker, and the next batch can learn meanwhile.
BACKGROUND_FLUSH_MIN = 10_000


class OutputProducer(Protocol):
    """The worker producer's two ways of sending what is queued (`DrainingProducer`)."""

    async def flush(self) -> None:
        """Send everything queued and wait for its acknowledgement."""
        ...

    async def send_pending(self) -> asyncio.Future[None]:
        """Send everything queued now; the returned future is its acknowledgement."""
        ...


class Offsets(Protocol):
    def acknowledge(self, records: Sequence[InputRecord]) -> None:
        """The records are handled: the next offset commit may cover them."""
        ...


class Checkpoint:
    """What a batch leaves behind: its lists, its profiles (changelogged), the producer's queue, its offsets.
    One batch's output is in flight at a time: a batch's `commit` first waits for the previous one's."""

    def __init__(
        self,
        *,
        lists: ListOutput,
        profiles: ProfileStore,
        producer: OutputProducer,
        offsets: Offsets,
        background_flush_min: int = BACKGROUND_FLUSH_MIN,
    ) -> None:
        self.lists = lists
        self.profiles = profiles
        self.producer = producer
        self.offsets = offsets
        self.background_flush_min = background_flush_min
        self._sending: asyncio.Future[None] | None = None  # the last batch's output being acknowledged

    def begin(self) -> None:
        """A batch starts: what an unfinished one left (lists, profiles) is dropped; it is handled again."""
        self.lists.drop()
        self.profiles.begin()

    def abandon(self) -> None:
        """The batch did not finish (cancelled, or a bug): nothing of it is written or sent."""
        self.lists.drop()
        self.profiles.drop()

    async def commit(self, records: Sequence[InputRecord], owners: Mapping[str, PartitionedRecord]) -> None:
        """End the batch of `records`; `owners`: for each user learned from, a record of theirs (its partition is
        the user's)."""
        # 1. The batch's outputs: its lists go to the producer (dead letters and re-keyed copies were queued as
        #    they occurred).
        self.lists.flush()
        # 2. Its changelogs: each changed profile written once, to its user's partition (RocksDB + changelog).
        self.profiles.flush(
            around=lambda user: partition_context(owners[user]), partition_of=lambda user: owners[user].partition
        )
        # 3. The producer: everything queued leaves now (the producer's sending only gets the event loop between
        #    the handler's steps, so otherwise it waited for a commit's flush); its acknowledgement is awaited by
        #    the next batch's commit.
        await self._send(len(records))
        # 4. The offsets: committable from now on; Faust's next commit flushes the producer first.
        self.offsets.acknowledge(records)

    async def _send(self, records: int) -> None:
        if self._sending is not None:
            await asyncio.shield(self._sending)  # a cancelled batch leaves it in flight
            self._sending = None
        if records < self.background_flush_min:
            self._sending = asyncio.ensure_future(self._acknowledged(await self.producer.send_pending()))
            for _ in range(3):  # aiokafka's sender drains its batches, then writes the requests: before the next batch
                await asyncio.sleep(0)
        else:
            # A large batch's output fills aiokafka's buffers, so even handing it over waits for the broker.
            self._sending = asyncio.ensure_future(self._flushed())
            await asyncio.sleep(0)  # the flush starts now

    async def _flushed(self) -> None:
        """Wait until everything queued is acknowledged. A failure here loses nothing (the commit flushes again
        before it commits offsets): it is logged."""
        try:
            await self.producer.flush()
        except Exception:
            log.exception("flushing the batch's output failed; the next commit flushes again")

    async def _acknowledged(self, acks: asyncio.Future[None]) -> None:
        """Wait for sent output's acknowledgement. A failure loses nothing (the commit flushes again before it
        commits offsets): it is logged."""
        try:
            await acks
        except Exception:
            log.exception("sending the batch's output failed; the next commit flushes again")
