"""deploy/schemas: valid draft 2020-12 schemas, one per topic, accepting their examples and rejecting breakage."""

from __future__ import annotations

import copy
import re
from typing import Any

import jsonschema
import pytest
from deploy_support import DEPLOY, ROOT, load_json

from streamrec.models.events import (
    ID_FORBIDDEN_CLASS,
    ID_VISIBLE_CLASS,
    MAX_ID_CHARS,
    MAX_LIST_ITEMS,
    MAX_QUERY_CHARS,
    MAX_TITLE_CHARS,
    ErrorCode,
)
from streamrec.streams.settings import Settings

SCHEMAS = DEPLOY / "schemas"
INPUTS = ("ratings", "plays", "searches", "catalog", "user-deletions")
OUTPUTS = ("recommendations", "events-dlq")
DRAFT = "https://json-schema.org/draft/2020-12/schema"


def schema(topic: str) -> dict[str, Any]:
    doc: dict[str, Any] = load_json(SCHEMAS / f"{topic}.schema.json")
    return doc


def validator(topic: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema(topic))


def example(topic: str) -> dict[str, Any]:
    return copy.deepcopy(schema(topic)["examples"][0])


def test_one_schema_per_documented_topic() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text.split("## Ids and topics", 1)[1].split("\n## ", 1)[0]
    topics = set(re.findall(r"`([a-z][a-z-]*)`", section))
    assert Settings.model_fields["dlq_topic"].default in topics
    assert {p.name.removesuffix(".schema.json") for p in SCHEMAS.glob("*.schema.json")} == topics
    assert topics == {*INPUTS, *OUTPUTS}


@pytest.mark.parametrize("topic", INPUTS + OUTPUTS)
def test_schema_is_valid_draft_2020_12(topic: str) -> None:
    doc = schema(topic)
    assert doc["$schema"] == DRAFT
    jsonschema.Draft202012Validator.check_schema(doc)
    assert jsonschema.validators.validator_for(doc) is jsonschema.Draft202012Validator


@pytest.mark.parametrize("topic", INPUTS + OUTPUTS)
def test_examples_are_accepted(topic: str) -> None:
    examples = schema(topic)["examples"]
    assert examples
    for doc in examples:
        validator(topic).validate(doc)


@pytest.mark.parametrize("topic", INPUTS + OUTPUTS)
def test_dropping_any_required_field_is_rejected(topic: str) -> None:
    required = schema(topic)["required"]
    assert required
    for name in required:
        doc = example(topic)
        del doc[name]
        assert not validator(topic).is_valid(doc), name


@pytest.mark.parametrize("topic", INPUTS)
def test_inputs_allow_unknown_fields_and_say_so(topic: str) -> None:
    assert schema(topic).get("additionalProperties", True) is not False
    assert "Additional properties are allowed" in schema(topic)["description"]
    assert validator(topic).is_valid({**example(topic), "added_in_v2": {"x": [1]}})


@pytest.mark.parametrize("topic", OUTPUTS)
def test_outputs_are_closed(topic: str) -> None:
    assert not validator(topic).is_valid({**example(topic), "unexpected": 1})


BROKEN: list[tuple[str, str, Any]] = [
    ("ratings", "rating", 5.5),
    ("ratings", "rating", "4"),
    ("ratings", "user_id", ""),
    ("ratings", "user_id", "u" * (MAX_ID_CHARS + 1)),
    ("ratings", "item_id", True),
    ("ratings", "user_id", "u\x00"),
    ("ratings", "event_id", "e\u200b"),
    ("plays", "item_id", "\u202em1"),
    ("searches", "user_id", " \xa0 "),
    ("catalog", "item_id", "m1\n"),
    ("ratings", "ts", -1),
    ("ratings", "ts", 1.5),
    ("plays", "watched_seconds", 604801),
    ("plays", "completed", "yes"),
    ("searches", "query", "   "),
    ("searches", "query", "q" * (MAX_QUERY_CHARS + 1)),
    ("searches", "clicked_item_id", 1.5),
    ("catalog", "title", " " * 3),
    ("catalog", "title", "t" * (MAX_TITLE_CHARS + 1)),
    ("catalog", "genres", ["Drama", " "]),
    ("catalog", "genres", ["g"] * (MAX_LIST_ITEMS + 1)),
    ("catalog", "year", 1849),
    ("catalog", "duration_seconds", -1),
    ("recommendations", "generated_at", -1),
    (
        "recommendations",
        "items",
        [{"item_id": "m1", "rank": 0, "score": 1.0, "reasons": [{"kind": "new", "text": "x"}]}],
    ),
    ("recommendations", "items", [{"item_id": "m1", "rank": 1, "score": 1.0, "reasons": []}]),
    ("recommendations", "items", [{"item_id": "m1", "rank": 1, "score": 1, "reasons": [{"kind": "x", "text": "t"}]}]),
    (
        "recommendations",
        "items",
        [{"item_id": "m1", "rank": 1, "score": 1, "reasons": [{"kind": "new", "text": "t", "n": 1}]}],
    ),
    ("user-deletions", "user_id", ""),
    ("user-deletions", "user_id", "u" * (MAX_ID_CHARS + 1)),
    ("user-deletions", "user_id", 1.5),
    ("user-deletions", "request_id", True),
    ("events-dlq", "error_code", "bogus"),
    ("events-dlq", "payload_base64", "not base64!"),
    ("events-dlq", "payload", 5),
    ("events-dlq", "payload_truncated", False),
    ("events-dlq", "partition", -1),
]


@pytest.mark.parametrize(("topic", "field", "value"), BROKEN)
def test_broken_example_is_rejected(topic: str, field: str, value: Any) -> None:
    doc = example(topic)
    assert validator(topic).is_valid(doc)
    doc[field] = value
    assert not validator(topic).is_valid(doc)


@pytest.mark.parametrize(
    ("topic", "field", "value"),
    [
        ("ratings", "user_id", "u" * MAX_ID_CHARS),
        ("ratings", "user_id", 2**64 - 1),
        ("searches", "query", "\t" + "q" * MAX_QUERY_CHARS + " "),
        ("catalog", "title", "t" * MAX_TITLE_CHARS),
        ("catalog", "genres", ["g"] * MAX_LIST_ITEMS),
        ("catalog", "year", None),
        ("user-deletions", "user_id", "u" * MAX_ID_CHARS),
        ("user-deletions", "request_id", None),
    ],
)
def test_limits_match_models_events(topic: str, field: str, value: Any) -> None:
    assert validator(topic).is_valid({**example(topic), field: value})


@pytest.mark.parametrize("topic", INPUTS)
def test_ids_follow_the_models_printable_rule(topic: str) -> None:
    text, integer = schema(topic)["$defs"]["id"]["anyOf"]
    assert text["pattern"] == ID_VISIBLE_CLASS
    assert text["not"] == {"pattern": ID_FORBIDDEN_CLASS}
    assert integer["type"] == "integer"
    assert "printable" in schema(topic)["$defs"]["id"]["description"]


def test_dlq_error_codes_are_exactly_models_error_codes() -> None:
    assert set(schema("events-dlq")["properties"]["error_code"]["enum"]) == {c.value for c in ErrorCode}


def test_dlq_has_one_payload_form_or_none_for_a_tombstone() -> None:
    doc = example("events-dlq")
    assert validator("events-dlq").is_valid({**doc, "payload": None, "payload_base64": "e30="})
    assert validator("events-dlq").is_valid({**doc, "payload": None, "payload_base64": None})
    assert not validator("events-dlq").is_valid({**doc, "payload_base64": "e30="})


def test_a_list_republished_without_events_is_valid() -> None:
    """A list ranked again because an item it named left the catalog reflects no event."""
    assert validator("recommendations").is_valid(
        {**example("recommendations"), "event_ids": [], "trigger_event_id": None}
    )
    assert not validator("recommendations").is_valid({**example("recommendations"), "trigger_event_id": ""})
