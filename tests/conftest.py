"""Shared fixtures: one embedded Kafka broker per test session, and test `Settings`.

The broker (noida-db) runs on a free port (or $STREAMREC_TEST_KAFKA_PORT) with its data in the session's temp
dir, gets the default topics (4 partitions each) and is stopped gracefully at the end. Tests that need it
either use the `kafka_bootstrap` fixture or carry the `kafka` marker; each implies the other.
Rules that keep the shared broker healthy: stop consumers and workers gracefully (a SIGKILLed consumer stays
in its group until the broker restarts) and use unique topic names and group ids per test.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import os
import socket
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import settings as hypothesis_settings

from streamrec.streams.kafka.admin import create_topics, default_topics
from streamrec.streams.settings import Settings
from streamrec.streams.tools import broker

_T = TypeVar("_T")

# No per-example deadline: on a shared 2-core machine a deadline is a timing assertion, and fails for the machine.
hypothesis_settings.register_profile("streamrec", deadline=None)
hypothesis_settings.load_profile("streamrec")
_app_ids = itertools.count()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "kafka_bootstrap" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.kafka)


@pytest.fixture(autouse=True)
def _broker_for_kafka_marked_tests(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("kafka") is not None:
        request.getfixturevalue("kafka_bootstrap")


@pytest.fixture(scope="session")
def broker_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Where the session's broker runs (it is started by `kafka_bootstrap`, not here)."""
    port = int(os.environ.get("STREAMREC_TEST_KAFKA_PORT") or _free_port())
    root = tmp_path_factory.mktemp("kafka")
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        bootstrap_servers=f"127.0.0.1:{port}",
        broker_dir=root / "broker",
        partitions=4,
    )


@pytest.fixture(scope="session")
def kafka_bootstrap(broker_settings: Settings) -> Iterator[str]:
    """The bootstrap address of a running broker that has the default topics."""
    try:
        broker.up(broker_settings, timeout_s=60.0)
        run_async(create_topics(broker_settings.bootstrap_servers, default_topics(broker_settings)))
        yield broker_settings.bootstrap_servers
    finally:
        broker.down(broker_settings)


@pytest.fixture
def settings_factory(broker_settings: Settings, tmp_path: Path) -> Callable[..., Settings]:
    """Build test `Settings`: temp data/model/cache dirs, the session broker, a unique app id; keyword
    arguments override any field. Ignores .env; request `kafka_bootstrap` (or mark `kafka`) to start Kafka."""

    def build(**overrides: Any) -> Settings:
        fields: dict[str, Any] = {
            "bootstrap_servers": broker_settings.bootstrap_servers,
            "broker_dir": broker_settings.broker_dir,
            "partitions": broker_settings.partitions,
            "app_id": f"streamrec-test-{os.getpid()}-{next(_app_ids)}",
            "data_dir": tmp_path / "data",
            "model_dir": tmp_path / "models",
            "cache_dir": tmp_path / "cache",
            **overrides,
        }
        return Settings(_env_file=None, **fields)  # type: ignore[call-arg]

    return build


def run_async(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Run a coroutine from sync code on a private loop in a helper thread (the test loop stays untouched)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
