"""Typed input events and their validation: bytes in, a typed event or a `Rejected` with a reason out.

The JSON Schema files under deploy/schemas/ describe the same contracts for producers; tests keep both in step.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

MAX_ID_CHARS = 64
MAX_QUERY_CHARS = 200
MAX_TITLE_CHARS = 500
MAX_LIST_ITEMS = 64
DAY_MS = 86_400_000  # event timestamps (`ts`) are epoch milliseconds

# An id is printable text: none of these code points (Unicode 15.0's controls Cc, format characters Cf such as
# zero-width spaces, bidi overrides and the BOM, line and paragraph separators Zl and Zp), no surrogate (Cs), and
# not only whitespace. Ids become Kafka keys, RocksDB keys, log lines and API paths, where such characters corrupt,
# hide or spoof what is shown. Fixed ranges, not the running Python's tables, so the contract (and the schemas'
# `pattern`, built from the same ranges) does not move with the interpreter's Unicode version.
ID_FORBIDDEN_RANGES: tuple[tuple[int, int], ...] = (
    (0x0000, 0x001F), (0x007F, 0x009F), (0x00AD, 0x00AD), (0x0600, 0x0605), (0x061C, 0x061C), (0x06DD, 0x06DD),
    (0x070F, 0x070F), (0x0890, 0x0891), (0x08E2, 0x08E2), (0x180E, 0x180E), (0x200B, 0x200F), (0x2028, 0x202E),
    (0x2060, 0x2064), (0x2066, 0x206F), (0xFEFF, 0xFEFF), (0xFFF9, 0xFFFB), (0x110BD, 0x110BD),
    (0x110CD, 0x110CD), (0x13430, 0x1343F), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
)  # fmt: skip
# Never in UTF-8 text (orjson refuses them too), and kept out of the schemas, whose strict readers refuse a lone
# surrogate escape; the parser checks them all the same.
SURROGATES = ((0xD800, 0xDFFF),)
# What remains of Python's whitespace (str.isspace) once the forbidden ranges are out: the space separators, Zs.
ID_BLANK_RANGES: tuple[tuple[int, int], ...] = (
    (0x0020, 0x0020), (0x00A0, 0x00A0), (0x1680, 0x1680), (0x2000, 0x200A), (0x202F, 0x202F), (0x205F, 0x205F),
    (0x3000, 0x3000),
)  # fmt: skip


def char_class(ranges: tuple[tuple[int, int], ...], *, negated: bool = False) -> str:
    """A regular-expression character class of `ranges` (the characters themselves, as JSON Schema carries them)."""
    body = "".join(chr(lo) if lo == hi else f"{chr(lo)}-{chr(hi)}" for lo, hi in ranges)
    return f"[{'^' if negated else ''}{body}]"


# The schemas' two patterns: an id matches the first nowhere and the second somewhere.
ID_FORBIDDEN_CLASS = char_class(ID_FORBIDDEN_RANGES)
ID_VISIBLE_CLASS = char_class(ID_FORBIDDEN_RANGES + ID_BLANK_RANGES, negated=True)
_FORBIDDEN_IN_ID = re.compile(f"{ID_FORBIDDEN_CLASS}|{char_class(SURROGATES)}")
_VISIBLE_IN_ID = re.compile(ID_VISIBLE_CLASS)
_CATEGORY_NAMES = {
    "Cc": "control",
    "Cf": "format",
    "Cs": "surrogate",
    "Zl": "line separator",
    "Zp": "paragraph separator",
}


class ErrorCode(StrEnum):
    NOT_JSON = "not_json"
    NOT_OBJECT = "not_object"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    OUT_OF_RANGE = "out_of_range"
    UNKNOWN_ITEM = "unknown_item"
    OVERSIZED = "oversized"
    FUTURE_EVENT = "future_event"
    KEY_MISMATCH = "key_mismatch"
    INVALID_ID = "invalid_id"  # an id holding a control or invisible character, or only whitespace
    INTERNAL_ERROR = "internal_error"  # not the input's fault: handling it raised; kept for replay after a fix


class Rejected(ValueError):
    """An input that cannot be applied; it goes to the dead-letter topic with this code and message."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Rating:
    event_id: str
    user_id: str
    item_id: str
    rating: float
    ts: int


@dataclass(frozen=True, slots=True)
class Play:
    event_id: str
    user_id: str
    item_id: str
    watched_seconds: float
    ts: int
    completed: bool | None = None


@dataclass(frozen=True, slots=True)
class Search:
    event_id: str
    user_id: str
    query: str
    ts: int
    clicked_item_id: str | None = None


@dataclass(frozen=True, slots=True)
class CatalogItem:
    item_id: str
    title: str
    genres: tuple[str, ...] = ()
    creators: tuple[str, ...] = ()
    duration_seconds: int = 0
    year: int | None = None


UserEvent = Rating | Play | Search


@dataclass(frozen=True, slots=True)
class Limits:
    max_event_bytes: int = 16_384
    max_future_skew_ms: int = 5 * 60_000


def parse_json_object(raw: bytes, limits: Limits) -> dict[str, Any]:
    if len(raw) > limits.max_event_bytes:
        raise Rejected(ErrorCode.OVERSIZED, f"{len(raw)} bytes > limit {limits.max_event_bytes}")
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Rejected(ErrorCode.NOT_JSON, f"invalid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise Rejected(ErrorCode.NOT_OBJECT, f"expected a JSON object, got {type(obj).__name__}")
    return obj


def parse_id(obj: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = obj.get(name)
    if value is None:
        if required:
            raise Rejected(ErrorCode.MISSING_FIELD, f"'{name}' is required")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise Rejected(ErrorCode.WRONG_TYPE, f"'{name}' must be a string or integer")
    text = str(value)
    if not 1 <= len(text) <= MAX_ID_CHARS:
        raise Rejected(ErrorCode.OUT_OF_RANGE, f"'{name}' must be 1..{MAX_ID_CHARS} characters")
    if text.isspace() or not (text.isascii() and text.isprintable()):  # printable ASCII needs no search
        _check_printable(name, text)
    return text


def _check_printable(name: str, text: str) -> None:
    forbidden = _FORBIDDEN_IN_ID.search(text)
    if forbidden is not None:
        char = forbidden.group()
        kind = _CATEGORY_NAMES.get(unicodedata.category(char), "invisible")
        raise Rejected(
            ErrorCode.INVALID_ID,
            f"'{name}' must be printable text: U+{ord(char):04X} (a {kind} character) at index {forbidden.start()}",
        )
    if _VISIBLE_IN_ID.search(text) is None:
        raise Rejected(ErrorCode.INVALID_ID, f"'{name}' must be printable text, not only whitespace")


def _number(obj: dict[str, Any], name: str, lo: float, hi: float) -> float:
    value = obj.get(name)
    if value is None:
        raise Rejected(ErrorCode.MISSING_FIELD, f"'{name}' is required")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Rejected(ErrorCode.WRONG_TYPE, f"'{name}' must be a number")
    if not (math.isfinite(value) and lo <= value <= hi):
        raise Rejected(ErrorCode.OUT_OF_RANGE, f"'{name}'={value} outside [{lo}, {hi}]")
    return float(value)


def _ts(obj: dict[str, Any], record_ts_ms: int, now_ms: int, limits: Limits) -> int:
    value = obj.get("ts")
    if value is None:
        return record_ts_ms
    if isinstance(value, bool) or not isinstance(value, int):
        raise Rejected(ErrorCode.WRONG_TYPE, "'ts' must be an integer (epoch milliseconds)")
    if value < 0:
        raise Rejected(ErrorCode.OUT_OF_RANGE, f"'ts'={value} is negative")
    if value > now_ms + limits.max_future_skew_ms:
        raise Rejected(ErrorCode.FUTURE_EVENT, f"'ts'={value} is {value - now_ms} ms in the future")
    return value


def _bool(obj: dict[str, Any], name: str) -> bool | None:
    value = obj.get(name)
    if value is None or isinstance(value, bool):
        return value
    raise Rejected(ErrorCode.WRONG_TYPE, f"'{name}' must be a boolean")


def check_key(key: bytes | None, id_name: str, id_value: str) -> None:
    # Bytes compared, not text: a lenient decode would let a key that is not UTF-8 pass for U+FFFD.
    if key and key != id_value.encode():
        raise Rejected(ErrorCode.KEY_MISMATCH, f"record key {key!r} differs from {id_name} {id_value!r}")


def parse_user_event(
    kind: str,
    raw: bytes,
    *,
    key: bytes | None,
    record_ts_ms: int,
    now_ms: int,
    item_exists: Callable[[str], bool],
    limits: Limits = Limits(),
) -> UserEvent:
    """Validate one record of topic `kind` ('ratings' | 'plays' | 'searches'). Raises `Rejected`."""
    obj = parse_json_object(raw, limits)
    event_id = parse_id(obj, "event_id")
    user_id = parse_id(obj, "user_id")
    assert event_id is not None and user_id is not None
    check_key(key, "user_id", user_id)
    ts = _ts(obj, record_ts_ms, now_ms, limits)
    if kind == "searches":
        query = obj.get("query")
        if query is None:
            raise Rejected(ErrorCode.MISSING_FIELD, "'query' is required")
        if not isinstance(query, str):
            raise Rejected(ErrorCode.WRONG_TYPE, "'query' must be a string")
        query = query.strip()
        if not 1 <= len(query) <= MAX_QUERY_CHARS:
            raise Rejected(ErrorCode.OUT_OF_RANGE, f"'query' must be 1..{MAX_QUERY_CHARS} characters")
        clicked = parse_id(obj, "clicked_item_id", required=False)
        if clicked is not None and not item_exists(clicked):
            raise Rejected(ErrorCode.UNKNOWN_ITEM, f"clicked_item_id {clicked!r} is not in the catalog")
        return Search(event_id, user_id, query, ts, clicked)
    item_id = parse_id(obj, "item_id")
    assert item_id is not None
    if kind == "ratings":
        rating = _number(obj, "rating", 0.5, 5.0)
        event: UserEvent = Rating(event_id, user_id, item_id, rating, ts)
    elif kind == "plays":
        watched = _number(obj, "watched_seconds", 0.0, 7 * 24 * 3600.0)
        event = Play(event_id, user_id, item_id, watched, ts, _bool(obj, "completed"))
    else:
        raise ValueError(f"unknown event kind {kind!r}")
    if not item_exists(item_id):
        raise Rejected(ErrorCode.UNKNOWN_ITEM, f"item_id {item_id!r} is not in the catalog")
    return event


def _str_list(obj: dict[str, Any], name: str) -> tuple[str, ...]:
    value = obj.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise Rejected(ErrorCode.WRONG_TYPE, f"'{name}' must be a list of non-empty strings")
    if len(value) > MAX_LIST_ITEMS:
        raise Rejected(ErrorCode.OUT_OF_RANGE, f"'{name}' has more than {MAX_LIST_ITEMS} entries")
    return tuple(dict.fromkeys(v.strip() for v in value))


def parse_catalog_item(raw: bytes, *, key: bytes | None = None, limits: Limits = Limits()) -> CatalogItem:
    """Validate one `catalog` record (key = item id, as the compacted topic needs). Raises `Rejected`."""
    obj = parse_json_object(raw, limits)
    item_id = parse_id(obj, "item_id")
    assert item_id is not None
    check_key(key, "item_id", item_id)
    title = obj.get("title")
    if title is None:
        raise Rejected(ErrorCode.MISSING_FIELD, "'title' is required")
    if not isinstance(title, str):
        raise Rejected(ErrorCode.WRONG_TYPE, "'title' must be a string")
    if not 1 <= len(title.strip()) <= MAX_TITLE_CHARS:
        raise Rejected(ErrorCode.OUT_OF_RANGE, f"'title' must be 1..{MAX_TITLE_CHARS} characters")
    duration = obj.get("duration_seconds")
    duration = 0 if duration is None else duration
    if isinstance(duration, bool) or not isinstance(duration, int | float):
        raise Rejected(ErrorCode.WRONG_TYPE, "'duration_seconds' must be a number")
    if not 0 <= duration <= 7 * 24 * 3600:
        raise Rejected(ErrorCode.OUT_OF_RANGE, f"'duration_seconds'={duration} outside [0, 604800]")
    year = obj.get("year")
    if year is not None and (isinstance(year, bool) or not isinstance(year, int)):
        raise Rejected(ErrorCode.WRONG_TYPE, "'year' must be an integer")
    if year is not None and not 1850 <= year <= 2200:
        raise Rejected(ErrorCode.OUT_OF_RANGE, f"'year'={year} outside [1850, 2200]")
    return CatalogItem(
        item_id=item_id,
        title=title.strip(),
        genres=_str_list(obj, "genres"),
        creators=_str_list(obj, "creators"),
        duration_seconds=int(duration),
        year=year,
    )


def event_to_dict(event: UserEvent | CatalogItem) -> dict[str, Any]:
    """The JSON form producers send (used by replay and tests)."""
    out: dict[str, Any] = {f: getattr(event, f) for f in event.__slots__}
    if isinstance(event, CatalogItem):
        out["genres"] = list(event.genres)
        out["creators"] = list(event.creators)
    return {k: v for k, v in out.items() if v is not None}
