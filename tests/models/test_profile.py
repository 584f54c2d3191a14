from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.profile import EncodedProfiles, HistoryEntry, SearchEntry, UserProfile

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
