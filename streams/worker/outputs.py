"""What the worker publishes: lists on `recommendations`, dead letters, re-keyed copies of unkeyed events.

Lists leave one of two ways, chosen once by the app: `HandedOverLists` collects a batch's lists per partition and
hands them to the worker's producer as whole batches (`DrainingProducer.hand_over`); `SentLists` sends each
through Faust's per-record path (the threaded producer has no hand-over).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import orjson
from faust.types import TopicT

from streamrec.models.base import Recommendation, recommendation_json
from streamrec.streams.internals.producer_buffer import Records
from streamrec.streams.worker.dlq import cut_key, dead_letter, encode
from streamrec.streams.worker.records import H_OFFSET, H_PARTITION, H_TOPIC, Incoming

log = logging.getLogger(__name__)


class ListOutput(Protocol):
    """Where the batch's lists go."""

    def put(self, partition: int, user_id: str, payload: bytes | None) -> None:
        """A user's list, for the user's partition of `recommendations` (None: a tombstone, the user is erased)."""
        ...

    def flush(self) -> None:
        """The lists put so far, handed to the producer."""
        ...

    def drop(self) -> None:
        """Forget lists not handed over yet (a batch that did not finish is handled again, its lists with it)."""
        ...


class HandedOverLists:
    """A batch's lists, per partition, handed to the producer as whole batches when the batch flushes them."""

    def __init__(self, topic: str, hand_over: Callable[[str, Records], None]) -> None:
        self.topic = topic
        self._hand_over = hand_over
        self._lists: defaultdict[int, list[tuple[bytes, bytes | None]]] = defaultdict(list)

    def put(self, partition: int, user_id: str, payload: bytes | None) -> None:
        self._lists[partition].append((user_id.encode(), payload))

    def flush(self) -> None:
        if self._lists:
            self._hand_over(self.topic, dict(self._lists))
            self._lists.clear()

    def drop(self) -> None:
        self._lists.clear()


class SentLists:
    """Each list sent as it is put, through Faust's per-record path."""

    def __init__(self, topic: TopicT) -> None:
        self.topic = topic

    def put(self, partition: int, user_id: str, payload: bytes | None) -> None:
        self.topic.send_soon(key=user_id.encode(), value=payload, partition=partition)

    def flush(self) -> None:
        return None

    def drop(self) -> None:
        return None


class DeadLetters:
    """Dead letters on the DLQ topic, keyed like their source (a re-keyed copy: by user id), so one user's dead
    letters stay in order."""

    def __init__(self, topic: TopicT) -> None:
        self.topic = topic

    async def send(self, record: Incoming, code: str, message: str, *, rejected_at_ms: int) -> None:
        """Never raises: if even the dead letter can't be queued, the record is logged in full instead."""
        letter = dead_letter(
            record.source,
            error_code=code,
            error_message=message,
            key=record.source_key,
            payload=record.value,
            rejected_at_ms=rejected_at_ms,
        )
        try:
            await self.topic.send(key=None if record.key is None else cut_key(record.key), value=encode(letter))
        except Exception:
            log.exception("could not dead-letter %s", letter)


class Rekeyer:
    """Copies of unkeyed records to the internal re-keyed topic, keyed by their `user_id`, so the profile update
    happens on the worker that owns the user's partition; the origin travels in headers."""

    def __init__(self, topic: TopicT) -> None:
        self.topic = topic

    def forward(self, record: Incoming, user_id: str) -> None:
        self.topic.send_soon(
            key=user_id.encode(),
            value=record.value,
            timestamp=record.timestamp_ms / 1000.0,  # keep the producer's time for freshness
            headers={
                H_TOPIC: record.kind.encode(),
                H_PARTITION: str(record.source.partition).encode(),
                H_OFFSET: str(record.source.offset).encode(),
            },
        )


def list_payload(
    user_id: str | None,
    event_ids: Sequence[str],
    model_version: str,
    items: Sequence[Recommendation | dict[str, Any]],
    now_ms: int,
) -> bytes:
    """A list as published on `recommendations` (JSON bytes). `event_ids`: the user's events this list is the
    first to reflect (several when a batch held more than one), in order; the last is `trigger_event_id`.
    `items`: `Recommendation`s, or their published form already (`RankedLists.json_items`)."""
    return orjson.dumps(
        {
            "user_id": user_id,
            "generated_at": now_ms,
            "model_version": model_version,
            "trigger_event_id": event_ids[-1] if event_ids else None,
            "event_ids": list(event_ids),
            "items": [item if isinstance(item, dict) else recommendation_json(item) for item in items],
        }
    )
