"""A Faust worker whose only agent does nothing (`async for _ in stream` over the input topics), or with
`--batching` streamrec's own consumption path with a handler that only counts: the ceiling of the worker's
consumption, whatever its handler does. Run as a subprocess by `benchmarks.throughput.faust_null`
(`python -m streamrec.benchmarks.null_agent --help`); SIGTERM/SIGINT stop it gracefully.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def build_app(
    app_id: str,
    bootstrap: str,
    topics: Sequence[str],
    web_port: int,
    data_dir: Path,
    partitions: int,
    *,
    batching: bool = False,
) -> Any:
    """The app: it counts events (one integer increment per event) and records read, and serves both at GET
    /count, so its throughput is read from outside the process; its consumer group (= app id) commits offsets like
    any Faust app. `batching`: the worker's app class (`streams.worker.ordered_app`, batches in record-time order)
    configured as the worker configures it."""
    import faust

    from streamrec.streams.kafka.security import faust_credentials
    from streamrec.streams.settings import get_settings

    data_dir.mkdir(parents=True, exist_ok=True)
    app_class: Any = faust.App
    batching_options: dict[str, Any] = {}
    if batching:  # streamrec's consumer as the worker configures it, with a handler that only counts
        from streamrec.streams.worker.ordered_app import TimeOrderedApp

        settings = get_settings()
        app_class = TimeOrderedApp
        batching_options = {
            "max_batch": settings.max_batch,
            "order_wait_s": settings.order_wait_ms / 1000,
            "empty_fetch_pause_s": settings.empty_fetch_pause_ms / 1000,
            "broker_max_poll_records": None,  # as the worker: a getmany returns all that was fetched
        }
    app = app_class(
        app_id,
        **batching_options,
        broker=[f"kafka://{server.strip()}" for server in bootstrap.split(",") if server.strip()],
        broker_credentials=faust_credentials(get_settings()),
        store="memory://",
        datadir=str(data_dir / app_id),
        web_host="127.0.0.1",
        web_bind="127.0.0.1",
        web_port=web_port,
        topic_partitions=partitions,
        consumer_auto_offset_reset="earliest",
        key_serializer="raw",
        value_serializer="raw",
        autodiscover=False,
    )
    topic = app.topic(*topics, key_type=bytes, value_type=bytes)
    counter = [0]
    read = [0]  # records read; the stock agent counts each as it reads it

    async def null(stream: Any) -> None:
        async for _ in stream:
            counter[0] += 1
            read[0] += 1

    async def null_batch(messages: Sequence[Any]) -> None:
        counter[0] += len(messages)

    def on_read(_topic: str, records: int) -> None:
        read[0] += records

    if batching:
        app.on_read = on_read
        app.batch_agent(topic, null_batch)
    else:
        app.agent(topic, name="bench.null")(null)

    async def count(web: Any, request: Any) -> Any:
        return web.json({"count": counter[0], "read": read[0]})

    app.page("/count")(count)
    return app


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Faust null agent for streamrec bench")
    parser.add_argument("--app-id", required=True)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--web-port", type=int, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--topics", default="ratings,plays,searches")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--batching", action="store_true", help="streamrec's batching consumer, a null handler")
    args = parser.parse_args(argv)
    import faust

    app = build_app(
        args.app_id,
        args.bootstrap,
        [t for t in args.topics.split(",") if t],
        args.web_port,
        args.data_dir,
        args.partitions,
        batching=args.batching,
    )
    sys.argv = sys.argv[:1]  # Faust's Worker reads no options of ours
    runner = faust.Worker(app, loglevel="warning", redirect_stdouts=False)
    # As in streams/cli/worker.py: at WARNING Faust's terminal spinner turns the root logger to DEBUG, so every
    # aiokafka debug record would be built; the null agent must not pay a cost the real worker does not.
    runner.spinner = None
    runner.execute_from_commandline()


if __name__ == "__main__":
    main()
