from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamrec.models.profile import EncodedProfiles, HistoryEntry, ProfileOverlay, SearchEntry, UserProfile

ids = st.text(min_size=1, max_size=64)
int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)


@given(
    user=ids,
    emb=st.lists(st.floats(-100, 100, width=16), min_size=0, max_size=96),
    history=st.lists(st.tuples(ids, st.floats(-3, 3), st.integers(0, 2**50)), max_size=50),
    watched=st.sets(int64, max_size=200),
    genres=st.dictionaries(st.text(min_size=1, max_size=20), st.floats(0, 1000), max_size=20),
    searches=st.lists(st.tuples(st.text(min_size=1, max_size=200), st.integers(0, 2**50)), max_size=5),
    event_ids=st.lists(int64, max_size=64),
)
def test_profile_round_trips_through_bytes(
    user: str,
    emb: list[float],
    history: list[tuple[str, float, int]],
    watched: set[int],
    genres: dict[str, float],
    searches: list[tuple[str, int]],
    event_ids: list[int],
) -> None:
    profile = UserProfile(
        user_id=user,
        embedding=np.array(emb, dtype=np.float32),
        history=[HistoryEntry(i, round(w, 3), t) for i, w, t in history],
        watched=watched,
        genre_weights={k: round(v, 3) for k, v in genres.items()},
        searches=[SearchEntry(q, t) for q, t in searches],
        event_ids=event_ids,
        n_events=7,
        last_ts=123,
        rating_sum=10.5,
        rating_count=3,
    )
    back = UserProfile.from_bytes(profile.to_bytes())
    assert back.user_id == profile.user_id
    np.testing.assert_array_equal(back.embedding, profile.embedding)  # float16-exact inputs survive
    assert back.history == profile.history
    assert back.watched == profile.watched
    assert back.genre_weights == profile.genre_weights
    assert back.searches == profile.searches
    assert back.event_ids == profile.event_ids
    assert (back.n_events, back.last_ts, back.rating_sum, back.rating_count) == (7, 123, 10.5, 3)


def test_garbage_is_not_mistaken_for_a_profile() -> None:
    with pytest.raises(ValueError, match="not a streamrec profile"):
        UserProfile.from_bytes(b"XXXX" + bytes(20))


def test_rating_mean_is_shrunk_towards_the_global_prior() -> None:
    profile = UserProfile.new("u", 4)
    assert profile.rating_mean == pytest.approx(3.5)
    profile.rating_sum, profile.rating_count = 5.0, 1
    assert 3.5 < profile.rating_mean < 5.0


def test_encoded_profiles_store_bytes_and_give_back_equal_profiles() -> None:
    backing: dict[bytes, bytes] = {}
    store = EncodedProfiles(backing)
    profile = UserProfile.new("ü", 4)
    profile.history.append(HistoryEntry("42", 0.5, 9))
    store["ü"] = profile
    assert isinstance(backing["ü".encode()], bytes)
    assert store["ü"].history == profile.history
    assert list(store) == ["ü"] and len(store) == 1
    del store["ü"]
    assert "ü" not in store


def _legacy_to_bytes(profile: UserProfile) -> bytes:
    """The codec as first written (lists, round()): `to_bytes` must keep producing exactly these bytes."""
    import struct

    import orjson

    body = orjson.dumps(
        {
            "u": profile.user_id,
            "h": [[h.item_id, round(h.weight, 3), h.ts] for h in profile.history],
            "g": {k: round(v, 3) for k, v in profile.genre_weights.items()},
            "s": [[s.query, s.ts] for s in profile.searches],
            "e": profile.event_ids,
            "n": [profile.n_events, profile.last_ts, round(profile.rating_sum, 3), profile.rating_count],
        }
    )
    watched = np.array(sorted(profile.watched), dtype=np.int64)  # sorted: bytes depend on the set's contents only
    header = struct.Struct("<4sHII").pack(b"SRP1", profile.embedding.shape[0], watched.shape[0], len(body))
    return header + profile.embedding.astype(np.float16).tobytes() + watched.tobytes() + body


weights = st.floats(-5, 5) | st.sampled_from([0.0, -0.0, 0.0005, -0.0005, 0.0015, -0.0004, 2.5e-4, 1e-12])


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")  # float16 overflow is covered
@given(
    user=ids,
    emb=st.lists(st.floats(-70_000, 70_000, width=32), max_size=96),
    history=st.lists(st.tuples(ids, weights, st.integers(0, 2**50)), max_size=50),
    watched=st.sets(int64, max_size=50),
    genres=st.dictionaries(st.text(min_size=1, max_size=20), st.floats(0, 1e4) | weights, max_size=20),
    searches=st.lists(st.tuples(st.text(min_size=1, max_size=50), st.integers(0, 2**50)), max_size=5),
    event_ids=st.lists(int64, max_size=64),
    rating_sum=st.floats(-1e6, 1e6) | weights,
)
def test_quantize_is_exactly_what_a_round_trip_does(
    user: str,
    emb: list[float],
    history: list[tuple[str, float, int]],
    watched: set[int],
    genres: dict[str, float],
    searches: list[tuple[str, int]],
    event_ids: list[int],
    rating_sum: float,
) -> None:
    profile = UserProfile(
        user_id=user,
        embedding=np.array(emb, dtype=np.float32),
        history=[HistoryEntry(i, w, t) for i, w, t in history],
        watched=watched,
        genre_weights=dict(genres),
        searches=[SearchEntry(q, t) for q, t in searches],
        event_ids=event_ids,
        n_events=len(event_ids),
        last_ts=99,
        rating_sum=rating_sum,
        rating_count=4,
    )
    raw = profile.to_bytes()
    assert raw == _legacy_to_bytes(profile)
    back = UserProfile.from_bytes(raw)
    profile.quantize()
    assert back.user_id == profile.user_id
    assert back.embedding.dtype == profile.embedding.dtype == np.float32
    assert back.embedding.tobytes() == profile.embedding.tobytes()  # bitwise: signed zeros, float16 overflow
    assert [(h.item_id, h.ts) for h in back.history] == [(h.item_id, h.ts) for h in profile.history]
    assert [repr(h.weight) for h in back.history] == [repr(h.weight) for h in profile.history]  # -0.0 too
    assert back.watched == profile.watched
    assert list(back.genre_weights.items()) == list(profile.genre_weights.items())
    assert [repr(w) for w in back.genre_weights.values()] == [repr(w) for w in profile.genre_weights.values()]
    assert back.searches == profile.searches
    assert back.event_ids == profile.event_ids
    assert (back.n_events, back.last_ts, back.rating_count) == (profile.n_events, profile.last_ts, 4)
    assert repr(back.rating_sum) == repr(profile.rating_sum)
    assert profile.to_bytes() == raw  # quantizing changes nothing the codec keeps
    profile.quantize()
    assert profile.to_bytes() == raw  # and is idempotent


@given(st.floats(allow_nan=False) | weights | st.integers(-10, 10))
def test_the_memoised_rounding_is_round(x: float) -> None:
    from streamrec.models.profile import _round3

    for _ in range(2):  # a miss, then a memo hit
        assert repr(_round3(x)) == repr(round(x, 3))
    assert repr(_round3(-x)) == repr(round(-x, 3))  # 0.0 and -0.0 are one dict key
    assert repr(_round3(float(x))) == repr(round(float(x), 3))  # 5 and 5.0 are one dict key too
    assert repr(_round3(x)) == repr(round(x, 3))


def _profile(user: str, weight: float) -> UserProfile:
    profile = UserProfile.new(user, 2)
    profile.history.append(HistoryEntry("i", weight, 1))
    return profile


def test_an_overlay_decodes_once_and_writes_each_changed_profile_once_in_first_write_order() -> None:
    backing: dict[bytes, bytes] = {}
    store = EncodedProfiles(backing)
    store["a"] = _profile("a", 0.1)
    store["b"] = _profile("b", 0.2)
    writes: list[bytes] = []

    class Spy(dict[bytes, bytes]):
        def __setitem__(self, key: bytes, value: bytes) -> None:
            writes.append(key)
            super().__setitem__(key, value)

    spied = EncodedProfiles(Spy(backing))
    overlay = ProfileOverlay(spied)
    a = overlay["a"]
    assert overlay["a"] is a  # decoded once, the same object all batch
    assert "c" not in overlay and overlay.get("c") is None
    overlay["c"] = _profile("c", 0.3)
    a.history[0].weight = 0.5
    overlay["a"] = a
    overlay["c"] = overlay["c"]
    assert overlay.dirty == ["c", "a"]
    assert sorted(overlay) == ["a", "b", "c"] and len(overlay) == 3
    assert spied["a"].history[0].weight == 0.1  # nothing written before the flush
    assert overlay.flush() == ["c", "a"]
    assert writes == [b"c", b"a"]
    assert spied["a"].history[0].weight == 0.5 and "c" in spied
    assert overlay.dirty == [] and overlay.flush() == []
    del overlay["b"]
    assert "b" not in overlay and sorted(overlay) == ["a", "c"]
    assert overlay.flush() == ["b"] and "b" not in spied
    with pytest.raises(KeyError):
        del overlay["b"]


def test_a_flush_can_wrap_each_write() -> None:
    store = EncodedProfiles()
    overlay = ProfileOverlay(store)
    overlay["b"] = _profile("b", 0.1)
    overlay["a"] = _profile("a", 0.2)
    seen: list[tuple[str, bool]] = []

    @contextmanager
    def around(user_id: str) -> Iterator[None]:
        seen.append((user_id, user_id in store))
        yield
        seen.append((user_id, user_id in store))

    assert overlay.flush(around=around) == ["b", "a"]
    assert seen == [("b", False), ("b", True), ("a", False), ("a", True)]


def test_a_batch_is_flushed_on_success_and_dropped_on_error() -> None:
    store = EncodedProfiles()
    with store.batch() as overlay:
        overlay["a"] = _profile("a", 0.1)
        assert "a" not in store
    assert store["a"].history[0].weight == 0.1
    with pytest.raises(RuntimeError), store.batch() as overlay:
        overlay["b"] = _profile("b", 0.1)
        raise RuntimeError
    assert "b" not in store


@given(st.sets(st.integers(-(2**63), 2**63 - 1), max_size=40), st.randoms())
def test_bytes_depend_on_the_watched_set_not_on_how_it_was_built(watched: set[int], rnd: random.Random) -> None:
    order = list(watched)
    rnd.shuffle(order)
    built: set[int] = set()
    for h in order:
        built.add(h)
    first = UserProfile.new("u", 4)
    second = UserProfile.new("u", 4)
    first.watched, second.watched = set(watched), built
    assert first.to_bytes() == second.to_bytes()
    assert UserProfile.from_bytes(first.to_bytes()).watched == watched


def test_input_offsets_survive_the_codec_and_are_absent_without_them() -> None:
    plain = UserProfile.new("u", 4)
    assert b'"o"' not in plain.to_bytes()  # profiles learnt without Kafka records keep their bytes
    plain.offsets = {"ratings:0": 41, "streamrec-rekeyed-events:3": 7}
    assert UserProfile.from_bytes(plain.to_bytes()).offsets == plain.offsets
