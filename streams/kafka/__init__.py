"""Every Kafka client and admin call of the project lives in this package (aiokafka underneath)."""

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
