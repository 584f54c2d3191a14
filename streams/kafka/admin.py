"""Topic administration: the project's topic list, idempotent creation, partition counts, broker readiness.

Admin APIs checked against the embedded noida-db 0.2.3 broker with aiokafka 0.14's AIOKafkaAdminClient:
- works: CreateTopics (with configs such as cleanup.policy=compact and retention.ms; errors come back as Kafka
  codes: 36 already exists, 37 bad partition count, 38 replication factor > 1 broker, 40 invalid config,
  17 bad name; validate_only is honoured), Metadata (list/describe topics, describe_cluster: one broker,
  node id 1), DescribeConfigs for topics and for broker "1", AlterConfigs, CreatePartitions, DeleteTopics,
  DeleteRecords, ListOffsets (earliest/latest/by time via the consumer), consumer groups (list, describe,
  committed offsets), idempotent and transactional producers, read_committed fetches, gzip, lz4, snappy and
  zstd record batches (aiokafka's codecs come from cramjam, a dependency).
- gotchas: a Metadata request naming an unknown topic auto-creates it with 1 partition (aiokafka's
  `describe_topics([...])` does this), so describing here fetches all topics and filters; retention.ms
  goes by record timestamp as in Kafka (records stamped years ago vanish within seconds), which is why
  replays stamp records with the produce time and carry the event time in the payload.
- not working: compaction never runs (the policy is stored and reported only).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError

from streamrec.streams.kafka.security import environment_security
from streamrec.streams.settings import Settings

RATINGS, PLAYS, SEARCHES, CATALOG = "ratings", "plays", "searches", "catalog"
RECOMMENDATIONS = "recommendations"
USER_DELETIONS = "user-deletions"  # deletion requests, keyed by user id like the events (same partitions)
INPUT_TOPICS = (RATINGS, PLAYS, SEARCHES, CATALOG)

_TOPIC_ALREADY_EXISTS = 36
_REQUEST_TIMEOUT_MS = 15_000


class BrokerUnavailableError(TimeoutError):
    """No broker answered a metadata request in time."""


class TopicCreationError(RuntimeError):
    """The broker refused some topics; `results` holds what happened to the others."""

    def __init__(self, errors: Mapping[str, str], results: Mapping[str, str]) -> None:
        details = "; ".join(f"{name}: {message}" for name, message in errors.items())
        super().__init__(f"could not create {len(errors)} topic(s): {details}")
        self.errors = dict(errors)
        self.results = dict(results)


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int
    compacted: bool = False
    configs: Mapping[str, str] = field(default_factory=dict)
    replication_factor: int = 1

    @property
    def topic_configs(self) -> dict[str, str]:
        """The configs sent to the broker: `configs` plus the cleanup policy implied by `compacted`."""
        return {"cleanup.policy": "compact" if self.compacted else "delete", **self.configs}


def default_topics(settings: Settings) -> list[TopicSpec]:
    """Inputs keyed by user id (catalog by item id, compacted), deletion requests keyed by user id (as many partitions
    as the events, so the worker owning a viewer gets their requests), the compacted output, and the dead letters."""

    def spec(name: str, *, compacted: bool = False) -> TopicSpec:
        return TopicSpec(name, settings.partitions, compacted=compacted, replication_factor=settings.replication_factor)

    return [
        spec(RATINGS),
        spec(PLAYS),
        spec(SEARCHES),
        spec(USER_DELETIONS),
        spec(CATALOG, compacted=True),
        spec(RECOMMENDATIONS, compacted=True),
        spec(settings.dlq_topic),
    ]


async def create_topics(bootstrap: str, specs: Iterable[TopicSpec]) -> dict[str, str]:
    """Create the missing topics; return a human-readable outcome per topic name.

    Existing topics are left alone (idempotent); a different partition count or cleanup policy is reported
    in the outcome, never changed, because repartitioning would move keys to other partitions.
    Raises TopicCreationError if the broker refuses a topic (bad config, replication factor, name).
    """
    wanted = {spec.name: spec for spec in specs}
    async with _admin_client(bootstrap) as admin:
        existing = await _partition_counts(admin)
        missing = [spec for name, spec in wanted.items() if name not in existing]
        results: dict[str, str] = {}
        errors: dict[str, str] = {}
        if missing:
            response = await admin.create_topics([_new_topic(spec) for spec in missing])
            for name, code, message in response.topic_errors:
                if code == 0:
                    results[name] = f"created with {wanted[name].partitions} partitions"
                elif code != _TOPIC_ALREADY_EXISTS:  # if it exists, a concurrent creator won the race
                    errors[name] = f"{message or 'error'} (Kafka error code {code})"
            existing = await _await_visible(admin, [spec.name for spec in missing if spec.name not in errors])
        already_there = [name for name in wanted if name not in results and name not in errors]
        policies = await _cleanup_policies(admin, already_there)
    for name in already_there:
        results[name] = _describe_existing(wanted[name], existing.get(name), policies.get(name))
    ordered = {name: results[name] for name in wanted if name in results}
    if errors:
        raise TopicCreationError(errors, ordered)
    return ordered


async def describe_topics(bootstrap: str, names: Iterable[str]) -> dict[str, int]:
    """Partition count per existing topic among `names`; unknown topics are left out (and not created)."""
    async with _admin_client(bootstrap) as admin:
        counts = await _partition_counts(admin)
    return {name: counts[name] for name in names if name in counts}


async def list_topics(bootstrap: str) -> dict[str, int]:
    """Every non-internal topic with its partition count."""
    async with _admin_client(bootstrap) as admin:
        return await _partition_counts(admin)


async def wait_for_broker(bootstrap: str, timeout_s: float) -> None:
    """Return once a broker at `bootstrap` answers a metadata request; raise BrokerUnavailableError after
    `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    last_error: BaseException | None = None
    with _quiet_connection_errors():
        while time.monotonic() < deadline:
            try:
                async with asyncio.timeout(max(min(deadline - time.monotonic(), 5.0), 0.1)):
                    async with _admin_client(bootstrap) as admin:
                        await admin.describe_cluster()
                return
            except (KafkaError, OSError, TimeoutError) as error:
                last_error = error
            await asyncio.sleep(0.2)
    raise BrokerUnavailableError(f"no Kafka broker answered at {bootstrap} within {timeout_s:g} s: {last_error!r}")


@contextmanager
def _quiet_connection_errors() -> Iterator[None]:
    """While waiting, a refused connection is expected: keep aiokafka from logging one error per retry."""

    def drop_refusals(record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Unable connect to")

    aiokafka_log = logging.getLogger("aiokafka")
    aiokafka_log.addFilter(drop_refusals)
    try:
        yield
    finally:
        aiokafka_log.removeFilter(drop_refusals)


@asynccontextmanager
async def _admin_client(bootstrap: str) -> AsyncIterator[Any]:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="streamrec-admin",
        request_timeout_ms=_REQUEST_TIMEOUT_MS,
        **environment_security(),
    )
    try:
        await admin.start()
        yield admin
    finally:
        await admin.close()


async def _partition_counts(admin: Any) -> dict[str, int]:
    # All-topics metadata: naming topics would auto-create the unknown ones (see the module docstring).
    topics = await admin.describe_topics()
    return {
        str(topic["topic"]): len(topic["partitions"])
        for topic in topics
        if topic["error_code"] == 0 and not topic["is_internal"] and not str(topic["topic"]).startswith("__")
    }


async def _await_visible(admin: Any, names: list[str], timeout_s: float = 10.0) -> dict[str, int]:
    """Partition counts once every topic in `names` shows up in metadata (a real cluster lags a little)."""
    deadline = time.monotonic() + timeout_s
    counts = await _partition_counts(admin)
    while any(name not in counts for name in names) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        counts = await _partition_counts(admin)
    return counts


async def _cleanup_policies(admin: Any, names: list[str]) -> dict[str, str]:
    if not names:
        return {}
    resources = [ConfigResource(ConfigResourceType.TOPIC, name, configs={"cleanup.policy": None}) for name in names]
    try:
        responses = await admin.describe_configs(resources)
    except KafkaError:
        return {}  # the policy check is advisory; partition counts are what matter
    policies: dict[str, str] = {}
    for response in responses:
        for error_code, _message, _type, name, entries in response.resources:
            for entry in entries if error_code == 0 else ():
                if entry[0] == "cleanup.policy":
                    policies[str(name)] = str(entry[1])
    return policies


def _new_topic(spec: TopicSpec) -> NewTopic:
    return NewTopic(spec.name, spec.partitions, spec.replication_factor, topic_configs=spec.topic_configs)


def _describe_existing(spec: TopicSpec, partitions: int | None, policy: str | None) -> str:
    if partitions is None:
        return "missing (created concurrently, then deleted?)"
    problems = []
    if partitions != spec.partitions:
        problems.append(f"has {partitions} partitions, NOT {spec.partitions} (recreate it to change)")
    expected_policy = spec.topic_configs["cleanup.policy"]
    if policy is not None and policy != expected_policy:
        problems.append(f"cleanup.policy is {policy}, NOT {expected_policy}")
    if problems:
        return "already exists but " + "; ".join(problems)
    return f"already exists with {partitions} partitions"
