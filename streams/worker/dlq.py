"""Dead letters: every input record that cannot be applied becomes one JSON record on `settings.dlq_topic`.

Record layout (one JSON object, deploy/schemas/events-dlq.schema.json): `source_topic`, `partition`, `offset`
(where the bad record lives, so it can be re-read), `error_code` (an `ErrorCode` value, or `internal_error` for a
bug while handling a valid-looking record), `error_message`, `key` (the source key as text, null if none),
`payload` (the value as text when it is valid UTF-8 and not mostly escapes in JSON) or `payload_base64`
(otherwise; the other one null, both null for a tombstone), `rejected_at` (epoch ms). Payloads above
`MAX_PAYLOAD_BYTES` and keys above `MAX_KEY_BYTES` are cut and flagged `payload_truncated` / `key_truncated`, so a
dead letter always fits in one Kafka record, whatever a hostile producer sends. The Kafka key of a dead letter is
the source key (cut the same way), so a user's dead letters stay in order.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import orjson

from streamrec.models.events import ErrorCode

INTERNAL_ERROR = ErrorCode.INTERNAL_ERROR.value
MAX_PAYLOAD_BYTES = 256 * 1024
MAX_KEY_BYTES = 1_024  # ids are at most 64 characters; a longer key is only shown, cut
MAX_MESSAGE_CHARS = 2_000
# Text of control characters is 6 bytes a byte as JSON ("\u0001"): past this ratio the payload goes as base64 (4/3),
# so a letter stays far below the producer's 1 MB request limit.
_MAX_TEXT_EXPANSION = 2


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
        "key": None if key is None else cut_key(key).decode("utf-8", "backslashreplace"),
        "payload": None,
        "payload_base64": None,  # both null: the record was a tombstone
        "rejected_at": rejected_at_ms,
    }
    if key is not None and len(key) > MAX_KEY_BYTES:
        record["key_truncated"] = True
    if payload is None:
        return record
    raw = payload
    if len(raw) > MAX_PAYLOAD_BYTES:
        raw = raw[:MAX_PAYLOAD_BYTES]
        record["payload_truncated"] = True
    try:
        text: str | None = raw.decode("utf-8")
    except UnicodeDecodeError:  # also a multi-byte character cut by the truncation above
        text = None
    if text is not None and len(orjson.dumps(text)) <= _MAX_TEXT_EXPANSION * len(raw) + 2:
        record["payload"] = text
    else:
        record["payload_base64"] = base64.b64encode(raw).decode("ascii")
    return record


def cut_key(key: bytes) -> bytes:
    """The Kafka key of a dead letter: the source key, cut to `MAX_KEY_BYTES`."""
    return key[:MAX_KEY_BYTES]


def encode(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record)
