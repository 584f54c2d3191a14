"""Consumer-group membership on the session's broker, with plain aiokafka consumers: what the workers rely on when one
joins or leaves for good.

Static members only: noida-db 0.2.3 never expires a member by its session timeout, and a dynamic member that joins
again under a new member id leaves its old id behind, which noida-db can name leader of the next generation, so the
group never settles (reproduced and explained in docs/scaling.md, "What the embedded broker lacks"). Static members
(`group.instance.id`) keep one member per instance and avoid it, as the workers do.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer

from streamrec.streams.internals.fetch_pacing import pace_consumer_fetches
from streamrec.streams.internals.group_join import leave_group_on_close, tolerate_empty_assignments
from streamrec.streams.kafka.admin import TopicSpec, create_topics

pytestmark = pytest.mark.kafka

PARTITIONS = 8


class Member:
    """A group member polling in the background, as a worker's consumer does."""

    def __init__(self, bootstrap: str, topic: str, group: str, instance_id: str | None) -> None:
        self.consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=group,
            group_instance_id=instance_id,
            enable_auto_commit=False,  # as the workers: a commit during a rebalance only adds churn here
            session_timeout_ms=6_000,
            heartbeat_interval_ms=500,
            rebalance_timeout_ms=4_000,
        )
        self._polling: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.consumer.start()
        pace_consumer_fetches(self.consumer, 0.05)
        self._polling = asyncio.create_task(self._poll())

    async def _poll(self) -> None:
        while True:
            with contextlib.suppress(asyncio.TimeoutError):  # getmany waits for an assignment without a bound
                await asyncio.wait_for(self.consumer.getmany(timeout_ms=200), 1.0)

    def partitions(self) -> set[int]:
        return {tp.partition for tp in self.consumer.assignment()}

    async def stop(self) -> None:
        if self._polling is not None:
            self._polling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._polling
        await asyncio.wait_for(self.consumer.stop(), 15.0)


@contextlib.asynccontextmanager
async def group(bootstrap: str, members: int, *, static: bool) -> AsyncIterator[tuple[list[Member], str, str]]:
    tolerate_empty_assignments()  # as the workers run
    topic, name = f"members-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    await create_topics(bootstrap, [TopicSpec(topic, PARTITIONS)])
    started: list[Member] = []
    try:
        for n in range(members):
            member = Member(bootstrap, topic, name, f"{name}-{n}" if static else None)
            await member.start()
            started.append(member)
        assert await all_hold_partitions(started, 30.0)
        yield started, topic, name
    finally:
        for member in started:
            with contextlib.suppress(Exception):
                await member.stop()


async def all_hold_partitions(members: list[Member], within_s: float) -> bool:
    """Every member holds partitions and together they hold each partition once, before `within_s` (a wait, not a
    timing assertion: on Kafka a join takes well under a second)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        held = [member.partitions() for member in members]
        if all(held) and sorted(p for partitions in held for p in partitions) == list(range(PARTITIONS)):
            return True
        await asyncio.sleep(0.25)
    return False


async def test_a_static_member_joining_a_stable_group_gets_partitions(kafka_bootstrap: str) -> None:
    async with group(kafka_bootstrap, 4, static=True) as (members, topic, name):
        joining = Member(kafka_bootstrap, topic, name, f"{name}-4")
        await joining.start()
        members.append(joining)
        assert await all_hold_partitions(members, 30.0)


async def test_a_static_member_that_leaves_on_close_hands_its_partitions_over(kafka_bootstrap: str) -> None:
    async with group(kafka_bootstrap, 3, static=True) as (members, _, _):
        leaving = members.pop(0)
        leave_group_on_close(leaving.consumer)
        await leaving.stop()
        assert await all_hold_partitions(members, 30.0)
