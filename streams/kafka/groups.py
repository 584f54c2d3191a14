"""Consumer-group offsets seen from outside the group: end offsets, committed offsets, lag, and pre-committing.

Used by `streamrec bench` to measure a worker without touching it (throughput from its committed offsets,
consumer lag = end offsets minus committed offsets) and to start a new group at the current end of its input
topics. Checked against noida-db 0.2.3: OffsetFetch for a group (active or not) and OffsetCommit from a
group-less member (manual assignment, generation -1) both work.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, Self

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import OffsetAndMetadata

from streamrec.streams.kafka.admin import describe_topics
from streamrec.streams.kafka.security import environment_security

Partition = tuple[str, int]  # (topic, partition)


class OffsetsProbe:
    """Long-lived clients for frequent sampling: `async with OffsetsProbe(bootstrap, topics) as probe:`.

    Topics must exist when the probe starts (their partitions are listed then; unknown topics are skipped).
    """

    def __init__(self, bootstrap: str, topics: Iterable[str], *, client_id: str = "streamrec-offsets") -> None:
        self._bootstrap = bootstrap
        self._topics = list(topics)
        self._client_id = client_id
        self._admin: Any = None
        self._consumer: Any = None
        self.partitions: list[Partition] = []

    async def start(self) -> None:
        counts = await describe_topics(self._bootstrap, self._topics)
        self.partitions = [(topic, p) for topic in self._topics if topic in counts for p in range(counts[topic])]
        security = environment_security()
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, client_id=self._client_id, group_id=None, **security
        )
        await self._consumer.start()
        self._admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap, client_id=self._client_id, **security)
        await self._admin.start()

    async def stop(self) -> None:
        consumer, self._consumer = self._consumer, None
        admin, self._admin = self._admin, None
        try:
            if consumer is not None:
                await consumer.stop()
        finally:
            if admin is not None:
                await admin.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.stop()

    async def end_offsets(self) -> dict[Partition, int]:
        """The next offset to be written, per partition of the probed topics."""
        tps = [TopicPartition(topic, p) for topic, p in self.partitions]
        ends: dict[Any, int] = await self._consumer.end_offsets(tps)
        return {(tp.topic, tp.partition): int(offset) for tp, offset in ends.items()}

    async def committed(self, group_id: str) -> dict[Partition, int]:
        """The group's committed offset per probed partition (0 where it has committed nothing)."""
        raw: dict[Any, Any] = await self._admin.list_consumer_group_offsets(group_id)
        wanted = set(self.partitions)
        found = {(tp.topic, tp.partition): int(meta.offset) for tp, meta in raw.items() if meta.offset >= 0}
        return {partition: found.get(partition, 0) for partition in self.partitions if partition in wanted}

    async def lag(self, group_id: str) -> int:
        """Sum over the probed partitions of end offset minus committed offset."""
        ends = await self.end_offsets()
        committed = await self.committed(group_id)
        return sum(max(end - committed.get(partition, 0), 0) for partition, end in ends.items())


async def end_offsets(bootstrap: str, topics: Iterable[str]) -> dict[Partition, int]:
    async with OffsetsProbe(bootstrap, topics) as probe:
        return await probe.end_offsets()


async def committed_offsets(bootstrap: str, group_id: str, topics: Iterable[str]) -> dict[Partition, int]:
    async with OffsetsProbe(bootstrap, topics) as probe:
        return await probe.committed(group_id)


async def commit_offsets(bootstrap: str, group_id: str, offsets: Mapping[Partition, int]) -> None:
    """Commit `offsets` for `group_id` without joining it (the group must have no active members)."""
    if not offsets:
        return
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        client_id="streamrec-offsets",
        group_id=group_id,
        enable_auto_commit=False,
        **environment_security(),
    )
    await consumer.start()
    try:
        tps = {TopicPartition(topic, p): offset for (topic, p), offset in offsets.items()}
        consumer.assign(list(tps))
        await consumer.commit({tp: OffsetAndMetadata(offset, "") for tp, offset in tps.items()})
    finally:
        await consumer.stop()
