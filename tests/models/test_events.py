"""streamrec.models.events: parsing, error codes, and agreement with the JSON Schemas under deploy/schemas/."""

from __future__ import annotations

import json
import math
import sys
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st

from streamrec.models.events import (
    ID_BLANK_RANGES,
    ID_FORBIDDEN_RANGES,
    MAX_ID_CHARS,
    SURROGATES,
    CatalogItem,
    ErrorCode,
    Limits,
    Play,
    Rating,
    Rejected,
    Search,
    UserEvent,
    event_to_dict,
    parse_catalog_item,
    parse_user_event,
)

SCHEMAS = Path(__file__).resolve().parents[2] / "deploy" / "schemas"
KINDS = ("ratings", "plays", "searches", "catalog")
NOW_MS = 1_700_000_000_000
RECORD_TS_MS = 1_600_000_000_000
U64_MAX = 2**64 - 1


def parse(
    kind: str,
    doc: Any,
    *,
    key: bytes | None = None,
    now_ms: int = NOW_MS,
    item_exists: Callable[[str], bool] = lambda _: True,
    limits: Limits | None = None,
) -> UserEvent | CatalogItem:
    limits = limits or Limits()
    raw = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    if kind == "catalog":
        return parse_catalog_item(raw, limits=limits)
    return parse_user_event(
        kind, raw, key=key, record_ts_ms=RECORD_TS_MS, now_ms=now_ms, item_exists=item_exists, limits=limits
    )


RATING = {"event_id": "r1", "user_id": "u1", "item_id": "m1", "rating": 4.5, "ts": NOW_MS - 1}
PLAY = {"event_id": "p1", "user_id": "u1", "item_id": "m1", "watched_seconds": 600, "completed": True}
SEARCH = {"event_id": "s1", "user_id": "u1", "query": "  space opera ", "clicked_item_id": 7}
ITEM = {"item_id": "m1", "title": " Alien ", "genres": ["Horror", " Sci-Fi", "Horror"], "duration_seconds": 7020.9}


def event(kind: str, doc: Any, **kwargs: Any) -> UserEvent:
    parsed = parse(kind, doc, **kwargs)
    assert not isinstance(parsed, CatalogItem)
    return parsed


def with_(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """`base` with `changes` applied; a value of `...` deletes the key."""
    out = {**base, **changes}
    return {k: v for k, v in out.items() if v is not ...}


# (kind, document, parse kwargs, expected code). Together they must cover every ErrorCode.
REJECTIONS: list[tuple[str, Any, dict[str, Any], ErrorCode]] = [
    ("ratings", b"{nope", {}, ErrorCode.NOT_JSON),
    ("catalog", b"", {}, ErrorCode.NOT_JSON),
    ("plays", b"[1, 2]", {}, ErrorCode.NOT_OBJECT),
    ("catalog", b'"m1"', {}, ErrorCode.NOT_OBJECT),
    ("ratings", with_(RATING, rating=...), {}, ErrorCode.MISSING_FIELD),
    ("ratings", with_(RATING, user_id=None), {}, ErrorCode.MISSING_FIELD),
    ("searches", with_(SEARCH, query=...), {}, ErrorCode.MISSING_FIELD),
    ("catalog", with_(ITEM, title=...), {}, ErrorCode.MISSING_FIELD),
    ("ratings", with_(RATING, user_id=True), {}, ErrorCode.WRONG_TYPE),
    ("ratings", with_(RATING, ts=1.0), {}, ErrorCode.WRONG_TYPE),
    ("plays", with_(PLAY, completed="yes"), {}, ErrorCode.WRONG_TYPE),
    ("plays", with_(PLAY, watched_seconds="600"), {}, ErrorCode.WRONG_TYPE),
    ("catalog", with_(ITEM, genres="Drama"), {}, ErrorCode.WRONG_TYPE),
    ("catalog", with_(ITEM, creators=["ok", " "]), {}, ErrorCode.WRONG_TYPE),
    ("catalog", with_(ITEM, year=1999.0), {}, ErrorCode.WRONG_TYPE),
    ("ratings", with_(RATING, rating=5.01), {}, ErrorCode.OUT_OF_RANGE),
    ("ratings", with_(RATING, ts=-1), {}, ErrorCode.OUT_OF_RANGE),
    ("plays", with_(PLAY, watched_seconds=-0.1), {}, ErrorCode.OUT_OF_RANGE),
    ("searches", with_(SEARCH, query=" \t "), {}, ErrorCode.OUT_OF_RANGE),
    ("searches", with_(SEARCH, event_id="e" * 65), {}, ErrorCode.OUT_OF_RANGE),
    ("catalog", with_(ITEM, year=1849), {}, ErrorCode.OUT_OF_RANGE),
    ("catalog", with_(ITEM, genres=["g"] * 65), {}, ErrorCode.OUT_OF_RANGE),
    ("ratings", RATING, {"item_exists": lambda _: False}, ErrorCode.UNKNOWN_ITEM),
    ("searches", SEARCH, {"item_exists": lambda i: i != "7"}, ErrorCode.UNKNOWN_ITEM),
    ("plays", with_(PLAY, pad="x" * 300), {"limits": Limits(max_event_bytes=256)}, ErrorCode.OVERSIZED),
    ("catalog", with_(ITEM, pad="x" * 300), {"limits": Limits(max_event_bytes=256)}, ErrorCode.OVERSIZED),
    (
        "ratings",
        with_(RATING, ts=NOW_MS + 60_001),
        {"limits": Limits(max_future_skew_ms=60_000)},
        ErrorCode.FUTURE_EVENT,
    ),
    ("plays", PLAY, {"key": b"u2"}, ErrorCode.KEY_MISMATCH),
    ("ratings", with_(RATING, user_id="u\x001"), {}, ErrorCode.INVALID_ID),
    ("searches", with_(SEARCH, clicked_item_id="m\u202e1"), {}, ErrorCode.INVALID_ID),
    ("catalog", with_(ITEM, item_id=" \u3000 "), {}, ErrorCode.INVALID_ID),
]


def test_rejection_table_covers_every_error_code() -> None:
    # internal_error is the worker's (a bug while handling a record), never the parser's
    assert {code for *_, code in REJECTIONS} == set(ErrorCode) - {ErrorCode.INTERNAL_ERROR}


@pytest.mark.parametrize(("kind", "doc", "kwargs", "code"), REJECTIONS)
def test_rejected_with_code(kind: str, doc: Any, kwargs: dict[str, Any], code: ErrorCode) -> None:
    with pytest.raises(Rejected) as info:
        parse(kind, doc, **kwargs)
    assert info.value.code is code
    assert str(info.value).startswith(f"{code}: ")


def test_valid_events_parse() -> None:
    assert parse("ratings", RATING) == Rating("r1", "u1", "m1", 4.5, NOW_MS - 1)
    assert parse("plays", PLAY) == Play("p1", "u1", "m1", 600.0, RECORD_TS_MS, True)
    assert parse("searches", SEARCH) == Search("s1", "u1", "space opera", RECORD_TS_MS, "7")
    assert parse("catalog", ITEM) == CatalogItem("m1", "Alien", ("Horror", "Sci-Fi"), (), 7020, None)


def test_integer_ids_become_strings() -> None:
    rating = parse("ratings", with_(RATING, event_id=0, user_id=-5, item_id=U64_MAX))
    assert rating == Rating("0", "-5", str(U64_MAX), 4.5, NOW_MS - 1)
    item = parse("catalog", with_(ITEM, item_id=12))
    assert isinstance(item, CatalogItem) and item.item_id == "12"


@pytest.mark.parametrize("ts", [..., None])
def test_missing_ts_falls_back_to_record_ts(ts: Any) -> None:
    assert event("ratings", with_(RATING, ts=ts)).ts == RECORD_TS_MS


def test_boundaries_are_inclusive() -> None:
    skew = Limits().max_future_skew_ms
    assert event("ratings", with_(RATING, ts=NOW_MS + skew)).ts == NOW_MS + skew
    for rating in (0.5, 5, 5.0):
        parse("ratings", with_(RATING, rating=rating))
    parse("plays", with_(PLAY, watched_seconds=7 * 24 * 3600))
    parse("searches", with_(SEARCH, query=" " + "q" * 200 + " ", event_id="e" * 64))
    parse("catalog", with_(ITEM, title="t" * 500, year=2200, genres=["g"] * 64))


@pytest.mark.parametrize("key", [None, b"", b"u1"])
def test_matching_or_absent_key_is_accepted(key: bytes | None) -> None:
    assert event("plays", PLAY, key=key).user_id == "u1"


@pytest.mark.parametrize(
    ("kind", "doc"), [("ratings", RATING), ("plays", PLAY), ("searches", SEARCH), ("catalog", ITEM)]
)
def test_event_to_dict_round_trips_and_matches_schema(kind: str, doc: dict[str, Any]) -> None:
    event = parse(kind, doc)
    as_dict = event_to_dict(event)
    assert parse(kind, as_dict) == event
    strict_validator(kind).validate(as_dict)


@pytest.mark.parametrize("kind", KINDS)
def test_schema_examples_parse(kind: str) -> None:
    examples = load_schema(kind)["examples"]
    assert examples
    for example in examples:
        parse(kind, example)


# --- schema vs parser -------------------------------------------------------------------------------


@cache
def load_schema(kind: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMAS / f"{kind}.schema.json").read_text())
    return schema


# JSON Schema calls 7.0 an integer; the worker's decoder (orjson) yields a float and rejects it where an
# integer is required. Producers are told so in the schema descriptions; here `integer` means "no fraction".
_STRICT_TYPES = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
    "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool)
)
StrictValidator = jsonschema.validators.extend(jsonschema.Draft202012Validator, type_checker=_STRICT_TYPES)


@cache
def strict_validator(kind: str) -> Any:
    return StrictValidator(load_schema(kind))


def test_integral_floats_need_the_strict_integer_check() -> None:
    doc = with_(RATING, ts=float(NOW_MS))
    assert jsonschema.Draft202012Validator(load_schema("ratings")).is_valid(doc)
    assert not strict_validator("ratings").is_valid(doc)
    with pytest.raises(Rejected):
        parse("ratings", doc)


# Checks a schema cannot express are switched off: every item exists, no key, no future, no size limit.
# now_ms is above any ts the decoder can return as an integer.
OPEN: dict[str, Any] = {"key": None, "now_ms": 2**64, "item_exists": lambda _: True, "limits": Limits(2**40, 0)}
NOT_EXPRESSIBLE = {ErrorCode.UNKNOWN_ITEM, ErrorCode.KEY_MISMATCH, ErrorCode.FUTURE_EVENT, ErrorCode.OVERSIZED}

# A record travels as UTF-8, where a lone surrogate can't stand: its `\ud800` escape is rejected as not JSON, which
# JSON Schema cannot express. The generated text leaves surrogates out.
UNICODE = st.characters(exclude_categories=("Cs",))

WHITESPACE = " \t\n\r\x0b\x0c\x1c\x1f\x85\xa0\u1680\u2000\u2028\u3000"
NOT_WHITESPACE = "\u200b\ufeff\x00"  # look blank, but str.strip keeps them
BIG_INTS = st.sampled_from([2**63 - 1, -(2**63), -(2**63) - 1, U64_MAX, 2**64, 10**30, -(10**30)])
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | BIG_INTS
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.integers(-(10**6), 10**6).map(float)
    | st.text(UNICODE, max_size=8)
)
any_json = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(UNICODE, max_size=4), inner, max_size=3),
)
ws = st.text(st.sampled_from(WHITESPACE + NOT_WHITESPACE), max_size=3)
word = st.text(st.characters(exclude_categories=("Z", "C")), min_size=1, max_size=12)
mixed_text = st.text(st.sampled_from(WHITESPACE + NOT_WHITESPACE) | UNICODE, max_size=10)


def padded(limit: int) -> st.SearchStrategy[str]:
    """Whitespace, a core of about `limit` visible characters, whitespace: probes the trimmed-length bounds."""
    return st.builds(lambda a, n, b: a + "x" * n + b, ws, st.integers(limit - 2, limit + 2), ws)


def number(lo: float, hi: float) -> tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]:
    valid = st.floats(lo, hi) | st.integers(math.ceil(lo), math.floor(hi))
    near = st.sampled_from([lo, hi, math.nextafter(lo, -math.inf), math.nextafter(hi, math.inf), 0, -1])
    return valid, valid | near | st.floats(lo - 2, hi + 2) | any_json


@dataclass(frozen=True)
class Field:
    required: bool
    valid: st.SearchStrategy[Any]
    edge: st.SearchStrategy[Any]


ID_VALID = st.text(UNICODE, min_size=1, max_size=64) | st.integers(-(2**63), U64_MAX)
ID = Field(True, ID_VALID, ID_VALID | BIG_INTS | st.sampled_from(["", "i" * 64, "i" * 65]) | any_json)
TS = Field(False, st.none() | st.integers(0, U64_MAX), st.integers() | BIG_INTS | any_json)
BOOL = Field(False, st.none() | st.booleans(), any_json)
NAMES_VALID = st.lists(st.builds(lambda a, w, b: a + w + b, ws, word, ws), max_size=4)
NAMES = Field(
    False,
    NAMES_VALID,
    st.lists(ws, min_size=1, max_size=2)
    | st.lists(mixed_text, max_size=3)
    | st.lists(st.just("g"), min_size=63, max_size=66),
)


def text_field(limit: int) -> Field:
    return Field(True, NAMES_VALID.filter(bool).map(" ".join), padded(limit) | padded(1) | mixed_text | any_json)


USER = {"event_id": ID, "user_id": ID, "ts": TS}
FIELDS: dict[str, dict[str, Field]] = {
    "ratings": {**USER, "item_id": ID, "rating": Field(True, *number(0.5, 5.0))},
    "plays": {**USER, "item_id": ID, "watched_seconds": Field(True, *number(0, 604800)), "completed": BOOL},
    "searches": {**USER, "query": text_field(200), "clicked_item_id": Field(False, st.none() | ID_VALID, ID.edge)},
    "catalog": {
        "item_id": ID,
        "title": text_field(500),
        "genres": NAMES,
        "creators": NAMES,
        "duration_seconds": Field(False, *number(0, 604800)),
        "year": Field(False, st.none() | st.integers(1850, 2200), st.integers(1840, 2210) | any_json),
    },
}


@st.composite
def documents(draw: st.DrawFn, kind: str) -> Any:
    """Mostly valid objects with a few fields dropped or replaced by edge values, plus unknown extras."""
    fields = FIELDS[kind]
    if draw(st.integers(0, 15)) == 15:
        return draw(any_json)
    doc: dict[str, Any] = draw(
        st.fixed_dictionaries(
            {n: f.valid for n, f in fields.items() if f.required},
            optional={n: f.valid for n, f in fields.items() if not f.required},
        )
    )
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from(sorted(fields)))
        if draw(st.integers(0, 3)) == 0:
            doc.pop(name, None)
        else:
            doc[name] = draw(fields[name].valid | fields[name].edge)
    extras = st.dictionaries(st.text(UNICODE, max_size=6).filter(lambda k: k not in fields), any_json, max_size=2)
    return {**doc, **draw(extras)}


ID_EDGES = [
    "",
    "i" * 64,
    "i" * 65,
    " ",
    "\xa0",
    "a b",
    "\x00",
    "i\x7f",
    "\u200b",
    "\u2028i",
    "\U000e0041",
    "\U0001f600",
    0,
    -1,
    2**63 - 1,
    -(2**63),
    -(2**63) - 1,
    U64_MAX,
    2**64,
    1.0,
    True,
    None,
    [],
    {},
]
TEXT_EDGES = ["q", " q ", " ", "", "\u200b", "\x00", "\ufeff", "\u3000q\x85", 5, None, ["q"]]
NAME_EDGES = [[], ["a"], [" "], [""], ["\u200b"], ["a", "a"], ["a"] * 64, ["a"] * 65, "a", None, [1], [None]]
NUMBER_EDGES = [0, -0.0, -1e-9, 0.5, 0.49999, 5, 5.0, 5.000001, 604800, 604800.5, 2**64, True, "4", None, []]
EDGES: dict[str, list[Any]] = {
    "event_id": ID_EDGES,
    "user_id": ID_EDGES,
    "item_id": ID_EDGES,
    "clicked_item_id": ID_EDGES,
    "ts": [None, 0, -1, U64_MAX, 2**64, 1.0, 1.5, True, "1", []],
    "rating": NUMBER_EDGES,
    "watched_seconds": NUMBER_EDGES,
    "duration_seconds": NUMBER_EDGES,
    "completed": [True, False, None, 0, 1, "true", []],
    "query": [*TEXT_EDGES, "q" * 200, "q" * 201, "\t" + "q" * 200 + "\u2028", " " * 300],
    "title": [*TEXT_EDGES, "t" * 500, "t" * 501, "\u1680" + "t" * 500 + "\x1c", " " * 600],
    "genres": NAME_EDGES,
    "creators": NAME_EDGES,
    "year": [None, 1850, 1849, 2200, 2201, 2000.0, True, "2000", -(2**64)],
}
BASES = {"ratings": RATING, "plays": PLAY, "searches": SEARCH, "catalog": ITEM}
BOUNDARY_CASES = [(kind, name, value) for kind in KINDS for name in FIELDS[kind] for value in [..., *EDGES[name]]]


def agree(kind: str, doc: Any) -> None:
    """The strict schema and the parser (with inexpressible checks off) accept or reject `doc` together."""
    raw = json.dumps(doc).encode()
    schema_errors = [e.message for e in strict_validator(kind).iter_errors(json.loads(raw))]
    try:
        parse(kind, raw, **OPEN)
        rejected: Rejected | None = None
    except Rejected as exc:
        rejected = exc
    assert rejected is None or rejected.code not in NOT_EXPRESSIBLE
    assert (not schema_errors) == (rejected is None), f"{raw!r}: schema={schema_errors} parser={rejected}"


@pytest.mark.parametrize(("kind", "name", "value"), BOUNDARY_CASES)
def test_schema_and_parser_agree_on_boundaries(kind: str, name: str, value: Any) -> None:
    agree(kind, with_(BASES[kind], **{name: value}))


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_schema_accepts_exactly_what_the_parser_accepts(kind: str, data: st.DataObject) -> None:
    agree(kind, data.draw(documents(kind)))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("accepted", [True, False])
def test_documents_reach_both_outcomes(kind: str, accepted: bool) -> None:
    # Guards the property test against a generator that only ever produces one outcome.
    find(
        documents(kind),
        lambda doc: strict_validator(kind).is_valid(doc) is accepted and isinstance(doc, dict),
        settings=settings(max_examples=2000, database=None, phases=[Phase.generate]),
    )


def test_a_catalog_record_keyed_by_another_item_is_rejected() -> None:
    raw = json.dumps({"item_id": "7", "title": "Heat"}).encode()
    assert parse_catalog_item(raw, key=b"7").item_id == "7"
    with pytest.raises(Rejected) as info:
        parse_catalog_item(raw, key=b"8")
    assert info.value.code is ErrorCode.KEY_MISMATCH


# --- ids are printable text ----------------------------------------------------------------------------

ID_FIELDS = [
    ("ratings", "event_id"),
    ("ratings", "user_id"),
    ("ratings", "item_id"),
    ("plays", "event_id"),
    ("plays", "user_id"),
    ("plays", "item_id"),
    ("searches", "event_id"),
    ("searches", "user_id"),
    ("searches", "clicked_item_id"),
    ("catalog", "item_id"),
]
FORBIDDEN_CATEGORIES = {"Cc", "Cf", "Zl", "Zp"}  # and surrogates (Cs), which a UTF-8 record cannot carry


def in_ranges(code: int, ranges: tuple[tuple[int, int], ...]) -> bool:
    return any(lo <= code <= hi for lo, hi in ranges)


def test_forbidden_ranges_cover_this_pythons_unicode_tables() -> None:
    # The fixed ranges hold every Cc, Cf, Cs, Zl and Zp code point the interpreter knows; more only where its
    # (older) tables have nothing assigned yet.
    for code in range(sys.maxunicode + 1):
        category = unicodedata.category(chr(code))
        forbidden = in_ranges(code, ID_FORBIDDEN_RANGES)
        assert forbidden or in_ranges(code, SURROGATES) or category not in FORBIDDEN_CATEGORIES, hex(code)
        assert not forbidden or category in FORBIDDEN_CATEGORIES or category == "Cn", hex(code)
        if not forbidden and not in_ranges(code, SURROGATES):
            assert chr(code).isspace() == in_ranges(code, ID_BLANK_RANGES), hex(code)


def id_rejection(kind: str, name: str, value: Any) -> Rejected:
    with pytest.raises(Rejected) as info:
        parse(kind, with_(BASES[kind], **{name: value}))
    return info.value


@pytest.mark.parametrize(("kind", "name"), ID_FIELDS)
@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("u\x001", "U+0000 (a control character) at index 1"),
        ("\x1b[31mu1", "U+001B (a control character) at index 0"),
        ("u1\n", "U+000A (a control character) at index 2"),
        ("u\u202e1", "U+202E (a format character) at index 1"),
        ("\ufeffu1", "U+FEFF (a format character) at index 0"),
        ("u\u20281", "U+2028 (a line separator character) at index 1"),
        ("u1\U000e0041", "U+E0041 (a format character) at index 2"),
        (" \t", "U+0009 (a control character) at index 1"),
        ("   ", "not only whitespace"),
        ("\xa0\u3000", "not only whitespace"),
    ],
)
def test_an_unprintable_id_is_rejected_naming_field_and_character(kind: str, name: str, value: str, shown: str) -> None:
    rejected = id_rejection(kind, name, value)
    assert rejected.code is ErrorCode.INVALID_ID
    assert rejected.message.startswith(f"'{name}' must be printable text")
    assert shown in rejected.message


def test_a_lone_surrogate_is_refused_whatever_the_decoder() -> None:
    # orjson refuses the escape; the id check refuses the character itself should a decoder let it through.
    assert id_rejection("ratings", "user_id", "u\ud800").code is ErrorCode.NOT_JSON
    from streamrec.models.events import _check_printable

    with pytest.raises(Rejected, match="U\\+D800 \\(a surrogate character\\)"):
        _check_printable("user_id", "u\ud800")


@pytest.mark.parametrize("value", ["u 1", " u1 ", "\xa0u", "Zoë", "視聴者", "\U0001f600", "a\u00a0b", "x" * 64])
def test_printable_ids_with_spaces_or_any_script_are_accepted(value: str) -> None:
    assert event("ratings", with_(RATING, user_id=value)).user_id == value


forbidden_char = st.sampled_from(ID_FORBIDDEN_RANGES).flatmap(lambda r: st.integers(*r)).map(chr)
printable_text = st.text(
    st.characters(exclude_categories=("Cc", "Cf", "Cs", "Zl", "Zp", "Cn")), min_size=1, max_size=64
).filter(lambda text: not text.isspace())


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(ID_FIELDS), text=printable_text, bad=forbidden_char, at=st.integers(0, 64))
def test_one_forbidden_character_anywhere_rejects_the_id(field: tuple[str, str], text: str, bad: str, at: int) -> None:
    kind, name = field
    value = (text[:at] + bad + text[at:])[:MAX_ID_CHARS]
    rejected = id_rejection(kind, name, value if bad in value else bad + value[1:])
    assert rejected.code is ErrorCode.INVALID_ID and f"'{name}'" in rejected.message


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(ID_FIELDS), text=printable_text)
def test_printable_text_is_accepted_as_any_id(field: tuple[str, str], text: str) -> None:
    kind, name = field
    parsed = parse(kind, with_(BASES[kind], **{name: text}))
    assert getattr(parsed, name) == text


def test_a_key_that_is_not_utf8_matches_no_id() -> None:
    # A lenient decode would turn b"\xff" into U+FFFD, a printable id.
    with pytest.raises(Rejected) as info:
        parse("plays", with_(PLAY, user_id="\ufffd"), key=b"\xff")
    assert info.value.code is ErrorCode.KEY_MISMATCH
    with pytest.raises(Rejected) as info:
        parse_catalog_item(json.dumps({"item_id": "\ufffd", "title": "t"}).encode(), key=b"\xff")
    assert info.value.code is ErrorCode.KEY_MISMATCH
    assert event("plays", with_(PLAY, user_id="Zoë"), key="Zoë".encode()).user_id == "Zoë"
