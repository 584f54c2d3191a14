from pathlib import Path

from streamrec.benchmarks.null_agent import build_app
from streamrec.streams.internals.batching import BatchingApp
from streamrec.streams.settings import Settings


def test_batching_null_agent_uses_the_workers_consumer_as_configured(tmp_path: Path) -> None:
    topics = ["ratings", "plays", "searches"]
    app = build_app("bench-null-test", "127.0.0.1:1", topics, 6099, tmp_path, 4, batching=True)
    settings = Settings(_env_file=None)
    assert isinstance(app, BatchingApp)
    assert set(app.batch_handlers) == set(topics)
    assert app.max_batch == settings.max_batch
    assert app.order_wait_s == settings.order_wait_ms / 1000
    assert app.conf.broker_max_poll_records is None  # a getmany returns all that was fetched, as in the worker
    assert not app.agents  # no per-record agent: records reach the batch handler only


def test_stock_null_agent_is_a_plain_faust_agent(tmp_path: Path) -> None:
    app = build_app("bench-null-test", "127.0.0.1:1", ["ratings"], 6099, tmp_path, 4)
    assert not isinstance(app, BatchingApp)
    assert list(app.agents) == ["bench.null"]
