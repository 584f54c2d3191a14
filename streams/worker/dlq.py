"""Dead letters: every input record that cannot be applied becomes one JSON record on `settings.dlq_topic`.

Record layout (one JSON object): `source_topic`, `partition`, `offset` (where the bad record lives, so it can
be re-read), `error_code` (an `ErrorCode` value, or `internal_error` for a bug while handling a valid-looking
record), `error_message`, `key` (the source key as text, null if none), `payload` (the value as text when it
is valid UTF-8) or `payload_base64` (otherwise), `rejected_at` (epoch ms). Payloads above
`MAX_PAYLOAD_BYTES` are cut and flagged `payload_truncated`, so a dead letter always fits in one Kafka
record. The Kafka key of a dead letter is the source key, so a user's dead letters stay in order.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import orjson

from streamrec.models.events import ErrorCode

INTERNAL_ERROR = ErrorCode.INTERNAL_ERROR.value
MAX_PAYLOAD_BYTES = 256 * 1024
MAX_MESSAGE_CHARS = 2_000


@dataclass(frozen=True, slots=True)
class Source:
    """Where a record came from (the original topic/partition/offset, also for re-keyed copies)."""

    topic: str
    partition: int
    offset: int


def dead_letter(
    source: Source,
    *,
    error_code: str,
    error_message: str,
    key: bytes | None,
    payload: bytes | None,
    rejected_at_ms: int,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "source_topic": source.topic,
        "partition": source.partition,
        "offset": source.offset,
        "error_code": error_code,
        "error_message": error_message[:MAX_MESSAGE_CHARS],
        "key": None if key is None else key.decode("utf-8", "backslashreplace"),
        "rejected_at": rejected_at_ms,
    }
    raw = payload or b""
    if len(raw) > MAX_PAYLOAD_BYTES:
        raw = raw[:MAX_PAYLOAD_BYTES]
        record["payload_truncated"] = True
    try:
        record["payload"] = raw.decode("utf-8")
    except UnicodeDecodeError:  # also a multi-byte character cut by the truncation above
        record["payload_base64"] = base64.b64encode(raw).decode("ascii")
    if payload is None:
        record["payload"] = None  # a tombstone, not an empty string
    return record


def encode(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record)
