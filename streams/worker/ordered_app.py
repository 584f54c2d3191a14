"""The worker's Faust app: batches inside Faust (`streams.internals.batching`) merged in record-time order."""

from __future__ import annotations

from typing import Any

from faust.types import Message, TopicT

from streamrec.streams.internals.batching import BatchHandler, BatchingApp
from streamrec.streams.worker.time_order import TimeOrderedHold


class TimeOrderedApp(BatchingApp):
    """A `BatchingApp` whose batch topics reach their handlers merged in record-time order
    (`streams.worker.time_order`); records with equal timestamps go in the order the topic names were registered."""

    def __init__(self, *args: Any, order_wait_s: float = 0.25, **kwargs: Any) -> None:
        self.batch_rank: dict[str, int] = {}  # tie-break of equal timestamps: registration order
        self.unordered: set[str] = set()  # batch topics handed over as read, outside the time-ordered merge
        self.order_wait_s = order_wait_s
        super().__init__(*args, **kwargs)

    def new_hold(self) -> TimeOrderedHold[Message]:
        return TimeOrderedHold(
            self.batch_rank, self.unordered, max_batch=self.max_batch, order_wait_s=self.order_wait_s
        )

    def batch_agent(self, topic: TopicT, handler: BatchHandler, *, in_time_order: bool = True) -> None:
        """Subscribe to `topic` (one or more topic names) and hand its records to `handler` in batches. With
        `in_time_order=False` the topic's records are handed over as they are read (each partition's order kept)
        and its partitions hold nothing else back: for records whose handling doesn't depend on the others'."""
        super().batch_agent(topic, handler)
        for name in topic.topics:
            self.batch_rank[name] = len(self.batch_rank)
            if not in_time_order:
                self.unordered.add(name)
