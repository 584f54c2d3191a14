"""The embedded broker's lifecycle, against real noida-db processes."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streamrec.streams.cli.broker import broker_app
from streamrec.streams.kafka.admin import TopicSpec, create_topics, describe_topics
from streamrec.streams.settings import Settings, get_settings
from streamrec.streams.tools import broker


def _free_port() -> int:
    """A port for a broker of the test's own: next to a pinned session port, else any free one."""
    pinned = os.environ.get("STREAMREC_TEST_KAFKA_PORT")
    if pinned:
        return int(pinned) + 1
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[Settings]:
    """Settings for a broker of the test's own (not started); stopped at teardown whatever happened."""
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        bootstrap_servers=f"127.0.0.1:{_free_port()}",
        broker_dir=tmp_path / "broker",
    )
    yield settings
    broker.down(settings)


@pytest.mark.kafka
def test_status_reports_the_running_session_broker(broker_settings: Settings, kafka_bootstrap: str) -> None:
    current = broker.status(broker_settings)

    assert current.running
    assert current.kafka_address == kafka_bootstrap
    assert current.pid is not None
    os.kill(current.pid, 0)  # raises if there is no such process


@pytest.mark.kafka
def test_up_on_a_running_broker_changes_nothing(broker_settings: Settings) -> None:
    before = broker.status(broker_settings)

    after = broker.up(broker_settings)

    assert after.running
    assert after.pid == before.pid


@pytest.mark.kafka
def test_up_refuses_a_running_data_dir_with_another_port(broker_settings: Settings) -> None:
    other_port = broker_settings.model_copy(update={"bootstrap_servers": f"127.0.0.1:{_free_port()}"})

    with pytest.raises(broker.BrokerError, match="already runs"):
        broker.up(other_port)


def test_status_of_a_data_dir_without_broker_is_stopped(private_broker: Settings) -> None:
    current = broker.status(private_broker)

    assert not current.running
    assert current.pid is None
    assert current.kafka_address is None


@pytest.mark.kafka  # runs a noida-db of its own
async def test_down_keeps_topics_and_up_brings_them_back(private_broker: Settings) -> None:
    bootstrap = private_broker.bootstrap_servers
    started = await asyncio.to_thread(broker.up, private_broker)
    assert started.running
    assert started.kafka_address == bootstrap
    await create_topics(bootstrap, [TopicSpec("kept", partitions=3)])

    stopped = await asyncio.to_thread(broker.down, private_broker)

    assert not stopped.running
    assert started.pid is not None and not _process_exists(started.pid)
    assert (await asyncio.to_thread(broker.up, private_broker)).running
    assert await describe_topics(bootstrap, ["kept"]) == {"kept": 3}


def test_down_when_not_running_is_a_no_op(private_broker: Settings) -> None:
    assert not broker.down(private_broker).running


@pytest.mark.parametrize(("family", "host"), [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")])
def test_up_refuses_a_port_another_process_listens_on(private_broker: Settings, family: int, host: str) -> None:
    _, port = broker.embedded_address(private_broker.bootstrap_servers)
    with socket.socket(family, socket.SOCK_STREAM) as squatter:
        squatter.bind((host, port))
        squatter.listen()

        with pytest.raises(broker.BrokerError) as info:
            broker.up(private_broker, timeout_s=10.0)

    message = str(info.value)
    assert f"port {port} is already in use by pid {os.getpid()}" in message  # this test process holds it
    assert "STREAMREC_BOOTSTRAP_SERVERS=127.0.0.1:<free port>" in message
    assert not broker.status(private_broker).running


def test_up_refuses_a_port_bound_but_not_listening(private_broker: Settings) -> None:
    _, port = broker.embedded_address(private_broker.bootstrap_servers)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", port))

        with pytest.raises(broker.BrokerError, match=f"port {port} is already in use by another process"):
            broker.up(private_broker, timeout_s=10.0)


async def test_cli_up_exits_non_zero_naming_a_taken_port(
    private_broker: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, port = broker.embedded_address(private_broker.bootstrap_servers)
    monkeypatch.setenv("STREAMREC_BOOTSTRAP_SERVERS", private_broker.bootstrap_servers)
    monkeypatch.setenv("STREAMREC_BROKER_DIR", str(private_broker.broker_dir))
    get_settings.cache_clear()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
            squatter.bind(("127.0.0.1", port))
            squatter.listen()
            result = await asyncio.to_thread(CliRunner().invoke, broker_app, ["up", "--timeout", "5"])
    finally:
        get_settings.cache_clear()

    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())  # rich wraps long lines
    assert f"port {port} is already in use" in text and "pick a free port" in text
    assert "running" not in text


@pytest.mark.kafka
def test_up_refuses_the_port_of_a_broker_with_another_data_dir(broker_settings: Settings, tmp_path: Path) -> None:
    elsewhere = broker_settings.model_copy(update={"broker_dir": tmp_path / "elsewhere"})

    with pytest.raises(broker.BrokerError) as info:
        broker.up(elsewhere, timeout_s=10.0)

    message = str(info.value)
    _, port = broker.embedded_address(broker_settings.bootstrap_servers)
    assert f"port {port} is already in use" in message
    assert f"noida-db broker with data dir {broker_settings.broker_dir.resolve()}" in message
    assert not broker.status(elsewhere).running
    assert broker.status(broker_settings).running  # the other broker is left alone


@pytest.mark.parametrize(
    "bootstrap_servers",
    ["10.1.2.3:9092", "127.0.0.1:9092,127.0.0.1:9093", "127.0.0.1", "kafka.internal:9092"],
)
def test_embedded_address_accepts_only_one_local_address(bootstrap_servers: str) -> None:
    with pytest.raises(broker.BrokerError):
        broker.embedded_address(bootstrap_servers)


def test_embedded_address_parses_a_local_address() -> None:
    assert broker.embedded_address("localhost:19100") == ("127.0.0.1", 19100)


def test_noida_binary_is_executable() -> None:
    assert os.access(broker.noida_binary(), os.X_OK)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.kafka
async def test_cli_status_prints_the_kafka_address(broker_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMREC_BOOTSTRAP_SERVERS", broker_settings.bootstrap_servers)
    monkeypatch.setenv("STREAMREC_BROKER_DIR", str(broker_settings.broker_dir))
    get_settings.cache_clear()
    try:
        # in a thread: the command may run an event loop of its own
        result = await asyncio.to_thread(CliRunner().invoke, broker_app, ["status"])
    finally:
        get_settings.cache_clear()

    assert result.exit_code == 0, result.output
    assert broker_settings.bootstrap_servers in result.output
