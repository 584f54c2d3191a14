"""Faust declares its internal topics (changelogs, the assignor's leader topic, internal app topics) at start; a topic
that already exists is skipped only if the declaring client's metadata cache holds it, which has just the topics that
client has used, so an existing topic usually still costs a CreateTopics request to the controller. A broker without
CreateTopics or a controller (librdkafka's mock cluster, where every topic is created beforehand) then stops the
worker. `ExistingTopicsTransport` checks all-topics metadata first and skips the topics it lists, as Faust skips
those it has cached; a missing topic is created as before.
"""

from __future__ import annotations

import logging
from typing import Any

from aiokafka.errors import KafkaError
from faust.transport.drivers.aiokafka import Transport as AIOKafkaTransport

log = logging.getLogger(__name__)


class ExistingTopicsTransport(AIOKafkaTransport):
    async def _create_topic(
        self, owner: Any, client: Any, topic: str, partitions: int, replication: int, **kwargs: Any
    ) -> None:
        if topic not in client.cluster.topics() and await _listed(client, topic):
            log.debug("topic %r exists, not creating it", topic)
            return
        await super()._create_topic(owner, client, topic, partitions, replication, **kwargs)


async def _listed(client: Any, topic: str) -> bool:
    """Whether all-topics metadata lists `topic` (a request naming it would auto-create it on some brokers)."""
    try:
        metadata = await client.fetch_all_metadata()
    except KafkaError:
        return False  # unknown: Faust's own path decides (and reports what fails)
    return topic in metadata.topics()
