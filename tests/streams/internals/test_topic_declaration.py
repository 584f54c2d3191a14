"""A topic the broker lists is not created again, even when the declaring client has never used it: on a broker
without CreateTopics (librdkafka's mock cluster, `tests/streams/mock_kafka.py`) Faust's own path fails there."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import faust
import mode
import pytest
from aiokafka import AIOKafkaClient
from faust.transport.drivers.aiokafka import Transport as AIOKafkaTransport

sys.path.insert(0, str(Path(__file__).parents[1]))  # --import-mode=importlib: make the helper importable

from mock_kafka import MockCluster, MockClusterUnavailable, MockTopic

from streamrec.streams.internals.topic_declaration import ExistingTopicsTransport


@pytest.fixture
def cluster() -> Iterator[MockCluster]:
    try:
        started = MockCluster()
    except MockClusterUnavailable as error:
        pytest.skip(f"librdkafka's mock cluster cannot start here: {error}")
    try:
        started.create_topics([MockTopic("declared", 2)])
        yield started
    finally:
        started.close()


@asynccontextmanager
async def connected(cluster: MockCluster) -> AsyncIterator[AIOKafkaClient]:
    client = AIOKafkaClient(bootstrap_servers=cluster.bootstrap)
    await client.bootstrap()
    try:
        yield client
    finally:
        await client.close()


def transport(kind: type[AIOKafkaTransport], cluster: MockCluster) -> AIOKafkaTransport:
    app = faust.App("declaration", broker=f"kafka://{cluster.bootstrap}")
    return kind(app.conf.broker_consumer, app)


async def test_a_listed_topic_is_not_created(cluster: MockCluster) -> None:
    async with connected(cluster) as client:
        assert "declared" not in client.cluster.topics()  # the client has not used it
        await transport(ExistingTopicsTransport, cluster)._create_topic(mode.Service(), client, "declared", 2, 1)


async def test_faust_alone_asks_the_controller_and_fails_on_the_mock(cluster: MockCluster) -> None:
    async with connected(cluster) as client:
        with pytest.raises(Exception, match=r"not ready|[Cc]ontroller"):
            await transport(AIOKafkaTransport, cluster)._create_topic(mode.Service(), client, "declared", 2, 1)
