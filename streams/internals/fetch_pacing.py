"""Pace a consumer's fetches when the broker answers "nothing new" at once.

A Kafka broker holds an empty fetch for up to `fetch_max_wait_ms`; noida-db answers at once, so an idle aiokafka
fetcher asks again and again, and in a Faust worker its thread takes the GIL from the thread that handles records.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

FetchProc = Callable[[Any, int, Any], Awaitable[bool]]


def pace_empty_fetches(fetcher: Any, min_interval_s: float) -> None:
    """Wrap `fetcher._proc_fetch_request` (`aiokafka.consumer.fetcher.Fetcher._proc_fetch_request`: one fetch to
    one node; True when it added records) so an empty answer keeps the node's fetch "in flight" until
    `min_interval_s` after it was sent (`Fetcher._fetch_requests_routine` sends a node no new fetch while its task
    runs): what the broker's wait would have done, bounded by the interval. A record written meanwhile is fetched at
    most `min_interval_s` late; with Kafka, empty answers take the broker's wait, so nothing changes."""
    if min_interval_s <= 0:
        return
    fetch: FetchProc = fetcher._proc_fetch_request

    async def paced(assignment: Any, node_id: int, request: Any) -> bool:
        sent = time.monotonic()
        has_data = await fetch(assignment, node_id, request)
        if not has_data:
            rest = min_interval_s - (time.monotonic() - sent)
            if rest > 0:
                try:
                    await asyncio.sleep(rest)  # the node stays "in flight": no new fetch to it meanwhile
                except asyncio.CancelledError:
                    # As aiokafka's own fetch does: cancelled by close() or an assignment change, which await
                    # the task and expect a result, not the error.
                    return has_data
        return has_data

    fetcher._proc_fetch_request = paced


def pace_consumer_fetches(consumer: Any, min_interval_s: float) -> None:
    """`pace_empty_fetches` for a started `aiokafka.AIOKafkaConsumer`: its fetcher is `consumer._fetcher`."""
    pace_empty_fetches(consumer._fetcher, min_interval_s)
