"""Every Kafka client and admin call of the project lives in this package (aiokafka underneath)."""

from streams.kafka.admin import (
    BrokerUnavailableError,
    TopicCreationError,
    TopicSpec,
    create_topics,
    default_topics,
    describe_topics,
    list_topics,
    wait_for_broker,
)
from streams.kafka.consumer import Record, TopicNotFoundError, read_all, tail
from streams.kafka.producer import DeliveryError, JsonProducer

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
