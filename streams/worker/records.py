"""Input records as the worker reads them: the fields it needs, the origin of re-keyed copies, the timestamp."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from streamrec.streams.kafka.admin import PLAYS, RATINGS, SEARCHES
from streamrec.streams.worker.dlq import Source

# Headers of a re-keyed copy: where the original record lives (for dead letters and metrics).
H_TOPIC, H_PARTITION, H_OFFSET = "streamrec-source-topic", "streamrec-source-partition", "streamrec-source-offset"

Headers = Sequence[tuple[str, bytes | None]] | Mapping[str, bytes | None]  # Faust: a list of (name, value) pairs


class InputRecord(Protocol):
    """A consumed record, as the worker reads it (a Faust `Message` is one)."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...

    @property
    def offset(self) -> int: ...

    @property
    def key(self) -> bytes | None: ...

    @property
    def value(self) -> bytes | None: ...

    @property
    def timestamp(self) -> float: ...  # seconds

    @property
    def headers(self) -> Headers | None: ...


REKEYED_SUFFIX = "-rekeyed-events"


def rekeyed_topic_name(app_id: str) -> str:
    return f"{app_id}{REKEYED_SUFFIX}"


@dataclass(slots=True)
class Incoming:
    """One input record as the processor sees it (independent of Faust's event type)."""

    kind: str  # ratings | plays | searches | catalog
    source: Source  # the original record (for a re-keyed copy: where the producer wrote it)
    key: bytes | None
    value: bytes | None
    timestamp_ms: int  # Kafka timestamp of the original record (producer time)
    rekeyed: bool = False  # a copy from the re-keyed topic: the original record had no key

    @property
    def source_key(self) -> bytes | None:
        return None if self.rekeyed else self.key


def incoming_from(record: InputRecord) -> Incoming:
    """An input-topic record (its headers ignored), or a re-keyed copy (origin taken from its headers). Raises
    ValueError (or KeyError, UnicodeDecodeError) on a copy's origin headers the worker did not write: the caller
    dead-letters the copy as it is."""
    if record.topic.endswith(REKEYED_SUFFIX):
        headers = _headers(record)
        source = Source(headers[H_TOPIC].decode(), int(headers[H_PARTITION].decode()), int(headers[H_OFFSET].decode()))
        # The origin names the event kind and a metric label: only the user-event topics, never a made-up one.
        if source.topic not in _REKEYED_KINDS or source.partition < 0 or source.offset < 0:
            raise ValueError(
                f"re-keyed copy with a foreign origin {source.topic[:64]!r}[{source.partition}]@{source.offset}"
            )
        return Incoming(source.topic, source, record.key, record.value, timestamp_ms(record), rekeyed=True)
    return as_read(record)


_REKEYED_KINDS = frozenset({RATINGS, PLAYS, SEARCHES})


def as_read(record: InputRecord, kind: str | None = None) -> Incoming:
    """The record itself, headers aside (`kind`: its topic unless given)."""
    return Incoming(kind or record.topic, source_of(record), record.key, record.value, timestamp_ms(record))


def _headers(record: InputRecord) -> dict[str, bytes]:
    raw = record.headers or {}
    pairs = raw.items() if isinstance(raw, Mapping) else raw
    return {str(name): bytes(value) for name, value in pairs if value is not None}


def source_of(record: InputRecord) -> Source:
    return Source(record.topic, int(record.partition), int(record.offset))


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


def timestamp_ms(record: InputRecord) -> int:
    # Faust gives seconds as a float; the contracts use epoch milliseconds.
    return round(float(record.timestamp) * 1000) if record.timestamp else int(time.time() * 1000)
