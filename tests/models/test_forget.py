"""Erasing a viewer (`StreamRecommender.forget`, `parse_user_deletion`) and removing items (`remove_items`): what
goes, what stays, and that a removed item is never ranked nor named as evidence again."""

from __future__ import annotations

from collections import Counter

import numpy as np
import orjson
import pytest

from streamrec.benchmarks.workloads import EventGenerator, synthetic_catalog
from streamrec.models.catalog import Catalog
from streamrec.models.deletion import UserDeletion, parse_user_deletion
from streamrec.models.events import CatalogItem, ErrorCode, Play, Rating, Rejected, Search, UserEvent, parse_user_event
from streamrec.models.profile import EncodedProfiles
from streamrec.models.recommender import StreamParams, StreamRecommender

DAY = 86_400_000
BASE_TS = 1_700_000_000_000


def _system(items: list[CatalogItem] | tuple[CatalogItem, ...], **params: object) -> StreamRecommender:
    system = StreamRecommender(StreamParams(**params))  # type: ignore[arg-type]
    system.add_items([(item, 0) for item in items])
    return system


def _history(system: StreamRecommender, user: str) -> None:
    system.learn_one(Rating(f"{user}-r1", user, "1", 5.0, DAY), ("ratings", 0, 1))
    system.learn_one(Play(f"{user}-p1", user, "2", 7000.0, DAY + 1), ("plays", 0, 1))
    system.learn_one(Search(f"{user}-s1", user, "toy story", DAY + 2), ("searches", 0, 1))


# -- deletion requests ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "key", "expected"),
    [
        (b'{"user_id": "u42", "request_id": "r-1"}', b"u42", UserDeletion("u42", "r-1")),
        (b'{"user_id": 42}', b"42", UserDeletion("42")),
        (b'{"user_id": "u42", "reason": "account closed"}', None, UserDeletion("u42")),  # extra fields allowed
        (None, b"u42", UserDeletion("u42")),  # a tombstone keyed by the user
    ],
)
def test_a_deletion_request_names_the_viewer(raw: bytes | None, key: bytes | None, expected: UserDeletion) -> None:
    assert parse_user_deletion(raw, key=key) == expected


@pytest.mark.parametrize(
    ("raw", "key", "code"),
    [
        (b"not json", b"u1", ErrorCode.NOT_JSON),
        (b"[1]", b"u1", ErrorCode.NOT_OBJECT),
        (b'{"request_id": "r"}', b"u1", ErrorCode.MISSING_FIELD),
        (b'{"user_id": true}', b"u1", ErrorCode.WRONG_TYPE),
        (b'{"user_id": ""}', b"u1", ErrorCode.OUT_OF_RANGE),
        (b'{"user_id": "u2"}', b"u1", ErrorCode.KEY_MISMATCH),
        (None, None, ErrorCode.MISSING_FIELD),  # a tombstone without a key names nobody
        (None, b"\xff\xfe", ErrorCode.WRONG_TYPE),
        (None, b"u" * 65, ErrorCode.OUT_OF_RANGE),
    ],
)
def test_a_bad_deletion_request_is_rejected_with_a_reason(
    raw: bytes | None, key: bytes | None, code: ErrorCode
) -> None:
    with pytest.raises(Rejected) as rejected:
        parse_user_deletion(raw, key=key)
    assert rejected.value.code == code


# -- forgetting a viewer ------------------------------------------------------------------------------------------


def test_forget_erases_the_viewer_and_leaves_others_and_the_item_counts(items: list[CatalogItem]) -> None:
    system = _system(items)
    _history(system, "gone")
    _history(system, "kept")
    kept = system.profile("kept")
    assert kept is not None
    kept_bytes = kept.to_bytes()
    counts = system.cooccurrence.item_counts.copy()
    assert system.forget("gone") is True
    assert system.profile("gone") is None and "gone" not in system.profiles
    assert [r.item_id for r in system.rank("gone")] == [r.item_id for r in system.rank("never-seen")]
    kept_after = system.profile("kept")
    assert kept_after is not None and kept_after.to_bytes() == kept_bytes
    assert np.array_equal(system.cooccurrence.item_counts, counts)  # anonymous aggregates stay
    assert system.forget("gone") is False and system.forget("never-seen") is False


def test_after_forget_the_next_event_starts_a_fresh_profile(items: list[CatalogItem]) -> None:
    """No history, no watched items, no searches, no dedupe window nor input offsets survive: an event id the
    viewer used before, on an offset before the last one learnt, is learnt as new."""
    system = _system(items)
    _history(system, "u")
    system.forget("u")
    assert system.learn_one(Play("u-p1", "u", "3", 10.0, DAY + 5), ("plays", 0, 1)) is True
    profile = system.profile("u")
    assert profile is not None
    assert profile.n_events == 1 and [h.item_id for h in profile.history] == ["3"]
    assert len(profile.watched) == 1 and not profile.searches and profile.rating_count == 0
    assert profile.offsets == {"plays:0": 1}
    assert "1" in {r.item_id for r in system.rank("u")}  # what they watched before may be recommended again


def test_forget_through_an_encoded_store_deletes_the_stored_profile(items: list[CatalogItem]) -> None:
    """In the worker the profiles are encoded in a table, written through a batch overlay: the deletion reaches the
    store when the batch is flushed (the table's delete is the changelog's tombstone)."""
    backing: dict[bytes, bytes] = {}
    store = EncodedProfiles(backing)
    with store.batch() as overlay:
        system = StreamRecommender(profiles=overlay)
        system.add_items([(item, 0) for item in items])
        _history(system, "gone")
        _history(system, "kept")
    assert set(backing) == {b"gone", b"kept"}
    with store.batch() as overlay:
        system.profiles = overlay
        assert system.forget("gone") is True
        assert b"gone" in backing  # not before the flush
    assert set(backing) == {b"kept"}


# -- removing items -----------------------------------------------------------------------------------------------


def test_removed_items_leave_the_catalog_but_keep_their_rows(items: list[CatalogItem]) -> None:
    catalog = Catalog()
    catalog.upsert_many([(item, 0) for item in items])
    row = catalog.row_of["4"]
    assert catalog.remove(["4", "4", "nope"]) == ["4"]
    assert "4" not in catalog and catalog.row_of["4"] == row and len(catalog) == len(items)
    assert not catalog.live_rows()[row] and catalog.live_rows().sum() == len(items) - 1
    assert row not in catalog.token_rows["toy"] and row not in catalog.creator_rows["lasseter"]
    assert row not in catalog.hash_index()[1]
    assert catalog.remove(["4"]) == []
    catalog.upsert(items[3])  # published again: back, in the same row
    assert "4" in catalog and catalog.row_of["4"] == row and catalog.live_rows().all()
    assert row in catalog.token_rows["toy"] and row in catalog.hash_index()[1]


def test_events_naming_a_removed_item_are_rejected(items: list[CatalogItem]) -> None:
    system = _system(items)
    system.remove_items(["4"])
    raw = orjson.dumps({"event_id": "e", "user_id": "u", "item_id": "4", "rating": 4})
    with pytest.raises(Rejected) as rejected:
        parse_user_event(
            "ratings", raw, key=b"u", record_ts_ms=DAY, now_ms=DAY, item_exists=system.catalog.__contains__
        )
    assert rejected.value.code == ErrorCode.UNKNOWN_ITEM


def test_a_removed_item_is_never_ranked_nor_named_as_evidence(items: list[CatalogItem]) -> None:
    system = _system(items, top_n=len(items))
    _history(system, "u")  # rated Star Wars, watched The Empire Strikes Back
    system.learn_one(Play("x1", "other", "1", 7000.0, DAY), ("plays", 1, 1))
    system.learn_one(Play("x2", "other", "3", 7000.0, DAY + 1), ("plays", 1, 2))  # co-watched with Star Wars
    before = system.rank("u")
    assert any(reason.evidence.get("item_id") == "1" for r in before for reason in r.reasons)
    assert system.remove_items(["1", "3"]) == ["1", "3"]
    for user in ("u", "other", "never-seen"):
        ranked = system.rank(user)
        assert ranked and not {"1", "3"} & {r.item_id for r in ranked}
        assert not any(reason.evidence.get("item_id") in {"1", "3"} for r in ranked for reason in r.reasons)
    counts = system.cooccurrence.item_counts
    assert counts[system.catalog.row_of["3"]] == 1  # the counts stay (anonymous aggregates)


def _events(catalog: tuple[CatalogItem, ...], n: int) -> list[UserEvent]:
    records = EventGenerator(catalog, n_users=60, seed=3, id_prefix="f").events(n, base_ts_ms=BASE_TS)
    return [
        parse_user_event(
            r.topic, r.value, key=r.key.encode(), record_ts_ms=BASE_TS, now_ms=BASE_TS + 10**11, item_exists=bool
        )
        for r in records
    ]


@pytest.mark.parametrize("exhaustive", [None, True, False], ids=["dense", "every-item", "candidates"])
def test_removed_popular_items_leave_every_list(exhaustive: bool | None) -> None:
    """The most recommended items, removed: no list names them, whichever ranker (dense, or by candidates)."""
    catalog = synthetic_catalog(200)
    system = _system(catalog, top_n=10, exact_max_items=100 if exhaustive is not None else 8192)
    if exhaustive is not None:
        system.use_candidate_ranking(exhaustive=exhaustive)
    events = _events(catalog, 1500)
    for event in events:
        system.learn_one(event)
    users = sorted({event.user_id for event in events})
    shown = Counter(r.item_id for ranked in system.rank_many([system.profile(u) for u in users]) for r in ranked)
    removed = [item_id for item_id, _ in shown.most_common(5)]
    system.remove_items(removed)
    lists = system.rank_many([system.profile(u) for u in users])
    assert all(len(ranked) == 10 for ranked in lists)
    named = {r.item_id for ranked in lists for r in ranked}
    named |= {str(reason.evidence.get("item_id")) for ranked in lists for r in ranked for reason in r.reasons}
    assert not named & set(removed)
