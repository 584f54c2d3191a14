"""Deletion requests ("right to be forgotten"): bytes in, the viewer to erase or a `Rejected` with a reason out.

A request is a record on `user-deletions` keyed by the user id: a JSON object naming the user (`user_id`, and an
optional `request_id` for the requester's audit), or a tombstone (no value) whose key is the user id. The user id
follows the events' id rules (`models.events`), so a viewer is erased under the very id their events carry.
"""

from __future__ import annotations

from dataclasses import dataclass

from streamrec.models.events import ErrorCode, Limits, Rejected, check_key, parse_id, parse_json_object

DEFAULT_LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class UserDeletion:
    user_id: str
    request_id: str | None = None


def parse_user_deletion(raw: bytes | None, *, key: bytes | None, limits: Limits = DEFAULT_LIMITS) -> UserDeletion:
    """Validate one `user-deletions` record (`raw` None: a tombstone, whose key names the user). Raises `Rejected`."""
    if raw is None:
        if not key:
            raise Rejected(ErrorCode.MISSING_FIELD, "a tombstone deletion request needs the user id as its key")
        try:
            text = key.decode()
        except UnicodeDecodeError:
            raise Rejected(ErrorCode.WRONG_TYPE, "the record key must be UTF-8 text") from None
        user_id = parse_id({"user_id": text}, "user_id")
        assert user_id is not None
        return UserDeletion(user_id)
    obj = parse_json_object(raw, limits)
    user_id = parse_id(obj, "user_id")
    assert user_id is not None
    check_key(key, "user_id", user_id)
    return UserDeletion(user_id, parse_id(obj, "request_id", required=False))
