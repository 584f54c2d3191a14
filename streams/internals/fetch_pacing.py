"""Pace a consumer's fetches when the broker answers "nothing new" at once.

A Kafka broker holds a fetch that finds no data for up to `fetch_max_wait_ms` (Faust asks for 1.5 s) and
answers as soon as data arrives, so an idle consumer sends a couple of fetches a second. noida-db answers at
once, so an idle aiokafka fetcher sends thousands a second (measured: ~3,000/s for one drained partition),
and in a Faust worker that fetcher runs in a thread of its own: every answer takes the GIL from the thread
that handles records (py-spy: ~19% of the worker's samples in the fetcher's socket writes).

`pace_empty_fetches` makes an empty answer that came back sooner than `min_interval_s` hold its node's next
fetch for the rest of that interval: what the broker's wait would have done, bounded by the interval. A record
written meanwhile is fetched at most `min_interval_s` late. With Kafka, empty answers take the broker's wait,
so nothing changes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

FetchProc = Callable[[Any, int, Any], Awaitable[bool]]


def pace_empty_fetches(fetcher: Any, min_interval_s: float) -> None:
    """Wrap `fetcher._proc_fetch_request` (aiokafka's `Fetcher`: one fetch to one node; True when it added
    records) so an empty answer keeps the node's fetch "in flight" until `min_interval_s` after it was sent."""
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
