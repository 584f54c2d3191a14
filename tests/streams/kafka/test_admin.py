"""Topic administration against the session's noida-db broker."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from typer.testing import CliRunner

from streamrec.streams.cli.topics import topics_app
from streamrec.streams.kafka.admin import (
    CATALOG,
    RECOMMENDATIONS,
    BrokerUnavailableError,
    TopicCreationError,
    TopicSpec,
    create_topics,
    default_topics,
    describe_topics,
    list_topics,
    wait_for_broker,
)
from streamrec.streams.settings import Settings, get_settings


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def test_default_topics_follow_the_architecture() -> None:
    settings = Settings(_env_file=None, partitions=6, dlq_topic="dead-letters")  # type: ignore[call-arg]

    specs = {spec.name: spec for spec in default_topics(settings)}

    assert set(specs) == {
        "ratings",
        "plays",
        "searches",
        "user-deletions",
        "catalog",
        "recommendations",
        "dead-letters",
    }
    assert {spec.partitions for spec in specs.values()} == {6}  # deletion requests co-partitioned with the events
    assert specs["user-deletions"].topic_configs["cleanup.policy"] == "delete"  # compaction would drop requests
    assert {name for name, spec in specs.items() if spec.compacted} == {CATALOG, RECOMMENDATIONS}
    assert specs[CATALOG].topic_configs["cleanup.policy"] == "compact"
    assert specs["dead-letters"].topic_configs["cleanup.policy"] == "delete"


def test_explicit_configs_win_over_the_compaction_flag() -> None:
    spec = TopicSpec("t", 1, compacted=True, configs={"cleanup.policy": "compact,delete", "retention.ms": "-1"})

    assert spec.topic_configs == {"cleanup.policy": "compact,delete", "retention.ms": "-1"}


@pytest.mark.kafka
async def test_session_broker_has_the_default_topics_with_4_partitions(
    kafka_bootstrap: str, broker_settings: Settings
) -> None:
    names = [spec.name for spec in default_topics(broker_settings)]

    assert await describe_topics(kafka_bootstrap, names) == dict.fromkeys(names, 4)


@pytest.mark.kafka
async def test_creating_the_default_topics_again_is_idempotent(kafka_bootstrap: str, broker_settings: Settings) -> None:
    results = await create_topics(kafka_bootstrap, default_topics(broker_settings))

    assert results == {spec.name: "already exists with 4 partitions" for spec in default_topics(broker_settings)}


@pytest.mark.kafka
async def test_create_then_describe_a_new_topic(kafka_bootstrap: str) -> None:
    name = _unique("fresh")

    first = await create_topics(kafka_bootstrap, [TopicSpec(name, partitions=3)])
    second = await create_topics(kafka_bootstrap, [TopicSpec(name, partitions=3)])

    assert first == {name: "created with 3 partitions"}
    assert second == {name: "already exists with 3 partitions"}
    assert await describe_topics(kafka_bootstrap, [name]) == {name: 3}


@pytest.mark.kafka
async def test_a_different_partition_count_is_reported_not_changed(kafka_bootstrap: str) -> None:
    name = _unique("narrow")
    await create_topics(kafka_bootstrap, [TopicSpec(name, partitions=2)])

    results = await create_topics(kafka_bootstrap, [TopicSpec(name, partitions=4)])

    assert "has 2 partitions, NOT 4" in results[name]
    assert await describe_topics(kafka_bootstrap, [name]) == {name: 2}


@pytest.mark.kafka
async def test_the_cleanup_policy_is_applied_and_checked(kafka_bootstrap: str) -> None:
    name = _unique("compacted")
    await create_topics(kafka_bootstrap, [TopicSpec(name, partitions=1, compacted=True)])

    same = await create_topics(kafka_bootstrap, [TopicSpec(name, partitions=1, compacted=True)])
    flipped = await create_topics(kafka_bootstrap, [TopicSpec(name, partitions=1, compacted=False)])

    assert same == {name: "already exists with 1 partitions"}
    assert "cleanup.policy is compact, NOT delete" in flipped[name]


@pytest.mark.kafka
async def test_describing_an_unknown_topic_neither_lists_nor_creates_it(kafka_bootstrap: str) -> None:
    name = _unique("ghost")

    assert await describe_topics(kafka_bootstrap, [name, "ratings"]) == {"ratings": 4}
    assert name not in await list_topics(kafka_bootstrap)


@pytest.mark.kafka
async def test_refused_topics_raise_with_the_other_results(kafka_bootstrap: str) -> None:
    good, bad = _unique("good"), _unique("replicated")

    with pytest.raises(TopicCreationError) as raised:
        await create_topics(kafka_bootstrap, [TopicSpec(good, 1), TopicSpec(bad, 1, replication_factor=3)])

    assert set(raised.value.errors) == {bad}
    assert raised.value.results == {good: "created with 1 partitions"}
    assert bad not in await list_topics(kafka_bootstrap)


@pytest.mark.kafka
async def test_wait_for_broker_returns_when_it_answers(kafka_bootstrap: str) -> None:
    await wait_for_broker(kafka_bootstrap, timeout_s=10.0)


async def test_wait_for_broker_gives_up_on_a_closed_port() -> None:
    with pytest.raises(BrokerUnavailableError, match=r"127\.0\.0\.1:9\b"):
        await wait_for_broker("127.0.0.1:9", timeout_s=1.0)


@pytest.mark.kafka
async def test_cli_creates_topics_and_lists_them(broker_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMREC_BOOTSTRAP_SERVERS", broker_settings.bootstrap_servers)
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        # in a thread: the commands run an event loop of their own
        created = await asyncio.to_thread(runner.invoke, topics_app, ["create", "--partitions", "2"])
        listed = await asyncio.to_thread(runner.invoke, topics_app, ["list"])
    finally:
        get_settings.cache_clear()

    assert created.exit_code == 0, created.output
    assert created.output.count("NOT") == len(default_topics(broker_settings))  # table cells wrap
    assert listed.exit_code == 0, listed.output
    assert "recommendations" in listed.output
    assert "missing" not in listed.output
