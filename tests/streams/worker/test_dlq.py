"""streams.worker.dlq: whatever a record holds, its dead letter follows the events-dlq schema and fits in one
Kafka record (the worker's producer refuses requests above 1 MB)."""

from __future__ import annotations

import base64
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamrec.streams.worker.dlq import MAX_KEY_BYTES, MAX_PAYLOAD_BYTES, Source, cut_key, dead_letter, encode

SCHEMA = Path(__file__).resolve().parents[3] / "deploy" / "schemas" / "events-dlq.schema.json"
PRODUCER_LIMIT = 1_000_000
HUGE = 2 * MAX_PAYLOAD_BYTES


@cache
def validator() -> Any:
    return jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))


def letter(key: bytes | None, payload: bytes | None) -> dict[str, Any]:
    doc = dead_letter(
        Source("plays", 0, 7), error_code="oversized", error_message="m" * 5_000, key=key, payload=payload,
        rejected_at_ms=1,
    )  # fmt: skip
    validator().validate(doc)
    assert len(encode(doc)) + len(cut_key(key or b"")) < PRODUCER_LIMIT // 2
    return doc


@pytest.mark.parametrize(
    ("key", "payload"),
    [
        (b"u1", b'{"event_id": "e"}'),
        (None, b"\xff\xfe"),
        (b"u1", None),
        (b"k" * HUGE, b"{}"),
        (b"\xff" * HUGE, b"x" * HUGE),
        (None, b"\x01" * HUGE),  # valid UTF-8, six bytes a character as JSON text
        (None, "é".encode() * HUGE),  # a multi-byte character cut by the truncation
        (b"u1", b"\x00" * 100),
    ],
)
def test_any_record_gives_a_schema_valid_letter_that_fits(key: bytes | None, payload: bytes | None) -> None:
    doc = letter(key, payload)
    if payload is None:
        assert doc["payload"] is None and doc["payload_base64"] is None
    assert doc.get("key_truncated", False) == (key is not None and len(key) > MAX_KEY_BYTES)
    assert doc.get("payload_truncated", False) == (payload is not None and len(payload) > MAX_PAYLOAD_BYTES)
    assert len(doc["error_message"]) < 5_000


def test_control_characters_go_as_base64_and_ordinary_text_as_text() -> None:
    controls = letter(None, b"\x01" * 1_000)
    assert controls["payload"] is None and base64.b64decode(controls["payload_base64"]) == b"\x01" * 1_000
    event = orjson.dumps({"event_id": "e1", "user_id": "Zoë", "query": 'a "quoted" title'})
    assert letter(b"u", event)["payload"] == event.decode()


def test_the_kafka_key_of_a_letter_is_the_source_key_cut() -> None:
    assert cut_key(b"u1") == b"u1"
    assert cut_key(b"k" * HUGE) == b"k" * MAX_KEY_BYTES


@settings(max_examples=200, deadline=None)
@given(key=st.none() | st.binary(max_size=2 * MAX_KEY_BYTES), payload=st.none() | st.binary(max_size=2_000))
def test_any_bytes_give_a_valid_letter_holding_them(key: bytes | None, payload: bytes | None) -> None:
    doc = letter(key, payload)
    if payload is not None:
        held = doc["payload"].encode() if doc["payload"] is not None else base64.b64decode(doc["payload_base64"])
        assert held == payload
