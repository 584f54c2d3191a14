"""The Faust app as `create_app` wires it from the settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamrec.streams.internals.tables import PromptTableManager
from streamrec.streams.settings import Settings
from streamrec.streams.worker.app import create_app


@pytest.mark.parametrize(("compression", "codec"), [("lz4", "lz4"), ("zstd", "zstd"), ("none", None)])
def test_the_producer_compresses_as_configured(tmp_path: Path, compression: str, codec: str | None) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path, model_dir=tmp_path / "models", compression=compression)  # type: ignore[call-arg]
    app = create_app(settings)
    assert app.conf.producer_compression_type == codec
    assert app.conf.producer_linger == 0.005  # lists leave in a few requests, not one each


def test_zstd_is_the_default_codec(tmp_path: Path) -> None:
    # aiokafka compresses lz4 at level 9 (LZ4-HC): several times zstd's cost in the worker's event loop.
    settings = Settings(_env_file=None, data_dir=tmp_path, model_dir=tmp_path / "models")  # type: ignore[call-arg]
    assert create_app(settings).conf.producer_compression_type == "zstd"


@pytest.mark.parametrize(("session_timeout_s", "heartbeat_s"), [(60.0, 3.0), (10.0, 3.0), (6.0, 2.0)])
def test_the_session_timeout_is_the_consumer_s_with_heartbeats_every_third_of_it_at_most_3_s(
    tmp_path: Path, session_timeout_s: float, heartbeat_s: float
) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path,
        model_dir=tmp_path / "models",
        session_timeout_s=session_timeout_s,
    )
    app = create_app(settings)
    assert app.conf.broker_session_timeout == session_timeout_s
    assert app.conf.broker_heartbeat_interval == heartbeat_s


def test_a_session_timeout_faust_would_refuse_is_refused() -> None:
    with pytest.raises(ValueError, match="session_timeout_s"):
        Settings(_env_file=None, session_timeout_s=120)  # type: ignore[call-arg]


def test_an_unknown_codec_is_refused() -> None:
    with pytest.raises(ValueError, match="compression"):
        Settings(_env_file=None, compression="brotli")  # type: ignore[call-arg, arg-type]


async def test_the_table_manager_starts_without_faust_s_one_second_grace(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path, model_dir=tmp_path / "models")  # type: ignore[call-arg]
    app = create_app(settings)
    assert isinstance(app.tables, PromptTableManager)
    slept: list[float] = []

    async def no_sleep(seconds: float) -> None:
        slept.append(seconds)

    app.tables.sleep = no_sleep  # type: ignore[method-assign]
    app.tables._update_channels = _nothing  # type: ignore[method-assign]
    app.tables.recovery.start = _nothing  # type: ignore[method-assign]
    await app.tables.on_start()
    assert slept == []  # Faust's own on_start sleeps 1.0 here


async def _nothing() -> None:
    return None
