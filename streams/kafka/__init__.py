"""The project's own Kafka clients over aiokafka: topic admin, group-less readers (`read_all`, `tail`), a JSON
producer and consumer-group offsets seen from outside a group; the topic names every part uses.

Not every Kafka client is here: the worker's consumer and producer are Faust's (`streams.worker.app`, adjusted in
`streams.internals`), its catalog feed runs its own group-less aiokafka consumer (`streams.worker.catalog_feed`),
and the benchmarks build raw aiokafka clients to compare against. All of them take TLS and SASL from the settings
through `streams.kafka.security`.
"""

from streamrec.streams.kafka.admin import (
    BrokerUnavailableError,
    TopicCreationError,
    TopicSpec,
    create_topics,
    default_topics,
    describe_topics,
    list_topics,
    wait_for_broker,
)
from streamrec.streams.kafka.consumer import Record, TopicNotFoundError, read_all, tail
from streamrec.streams.kafka.producer import DeliveryError, JsonProducer

__all__ = [
    "BrokerUnavailableError",
    "DeliveryError",
    "JsonProducer",
    "Record",
    "TopicCreationError",
    "TopicNotFoundError",
    "TopicSpec",
    "create_topics",
    "default_topics",
    "describe_topics",
    "list_topics",
    "read_all",
    "tail",
    "wait_for_broker",
]
