from __future__ import annotations

import pytest

from streamrec.models.events import CatalogItem, Play, Rating, Search
from streamrec.models.recommender import StreamParams, StreamRecommender

DAY = 86_400_000


def _system(items: list[CatalogItem], **params: object) -> StreamRecommender:
    system = StreamRecommender(StreamParams(**params))  # type: ignore[arg-type]
    for item in items:
        system.add_item(item)
    return system


def _ids(system: StreamRecommender, user: str) -> list[str]:
    return [r.item_id for r in system.rank(user)]


def test_a_new_user_gets_a_full_list_with_reasons(items: list[CatalogItem]) -> None:
    system = _system(items, top_n=5)
    recs = system.rank("nobody")
    assert len(recs) == 5
    assert [r.rank for r in recs] == [1, 2, 3, 4, 5]
    assert all(r.reasons for r in recs)


def test_watched_items_are_never_recommended_again(items: list[CatalogItem]) -> None:
    system = _system(items, top_n=10)
    system.learn_one(Rating("e1", "u", "1", 5.0, DAY))
    system.learn_one(Play("e2", "u", "4", 4000.0, DAY + 1))
    assert not {"1", "4"} & set(_ids(system, "u"))


def test_a_duplicate_event_is_applied_once(items: list[CatalogItem]) -> None:
    system = _system(items)
    assert system.learn_one(Rating("e1", "u", "1", 5.0, DAY)) is True
    assert system.learn_one(Rating("e1", "u", "1", 5.0, DAY)) is False
    profile = system.profile("u")
    assert profile is not None and profile.n_events == 1
    assert system.cooccurrence.item_counts[system.catalog.row_of["1"]] == 1


def test_a_record_learnt_before_is_skipped_however_far_back_its_redelivery_starts(items: list[CatalogItem]) -> None:
    """More events than the event-id window remembers, then the whole range again from its first offset (a restart
    far behind): nothing is learnt twice, since the profile keeps each input partition's last offset."""
    system = _system(items, dedupe_window=4)
    events = [Rating(f"e{n}", "u", str(n % 10 + 1), 4.0, DAY + n) for n in range(12)]
    assert all(system.learn_one(event, ("ratings", 3, 100 + n)) for n, event in enumerate(events))
    before = system.profile("u")
    assert before is not None and before.offsets == {"ratings:3": 111}
    assert not any(system.learn_one(event, ("ratings", 3, 100 + n)) for n, event in enumerate(events))
    assert all(system.applied("u", ("ratings", 3, 100 + n)) for n in range(12))
    assert not system.applied("u", ("ratings", 3, 112)) and not system.applied("u", ("plays", 3, 0))
    after = system.profile("u")
    assert after is not None and (after.n_events, after.rating_count) == (12, 12)
    # The same event in a new record (another offset) is still known by its id while the window holds it.
    assert system.learn_one(events[-1], ("ratings", 3, 112)) is False


def test_co_watched_items_rise_for_the_next_viewer(items: list[CatalogItem]) -> None:
    system = _system(items, top_n=3, calibration_weight=0.0)
    for n, user in enumerate(["a", "b", "c"]):  # three viewers watch Casablanca then Heat
        system.learn_one(Rating(f"{user}1", user, "10", 5.0, DAY + 10 * n))
        system.learn_one(Rating(f"{user}2", user, "12", 5.0, DAY + 10 * n + 1))
    system.learn_one(Rating("d1", "d", "10", 5.0, 2 * DAY))
    recs = system.rank("d")
    assert recs[0].item_id == "12"
    watched = [r for r in recs[0].reasons if r.kind == "watched"]
    assert watched and watched[0].evidence["item_id"] == "10"


def test_a_search_for_title_words_moves_those_titles_up(items: list[CatalogItem]) -> None:
    system = _system(items, top_n=12, calibration_weight=0.0)
    system.learn_one(Rating("e1", "u", "4", 5.0, DAY))
    before = _ids(system, "u")
    system.learn_one(Search("e2", "u", "empire strikes", DAY + 1000))
    after = system.rank("u")
    assert after[0].item_id == "2"
    assert before.index("2") > 0
    assert any(r.kind == "search" and r.evidence["query"] == "empire strikes" for r in after[0].reasons)


def test_a_search_fades_with_time(items: list[CatalogItem]) -> None:
    system = _system(items, top_n=12, calibration_weight=0.0, search_half_life_ms=1000.0)
    system.learn_one(Search("e1", "u", "casablanca", DAY))
    system.learn_one(Rating("e2", "u", "4", 5.0, DAY + 60_000))  # a minute later: sixty half-lives
    recs = system.rank("u")
    assert not any(r.kind == "search" for rec in recs for r in rec.reasons)


def test_a_new_catalog_item_is_recommendable_at_once(items: list[CatalogItem]) -> None:
    system = _system(items, top_n=20)
    system.learn_one(Search("e1", "u", "jedi", DAY))
    system.add_item(CatalogItem("99", "Jedi Knights", ("Sci-Fi",), (), 6000, 2001), ts=DAY)
    assert "99" in _ids(system, "u")[:2]


def test_reasons_name_only_what_the_user_did(items: list[CatalogItem]) -> None:
    system = _system(items, top_n=10)
    for n, (user, item) in enumerate([("a", "1"), ("a", "2"), ("b", "1"), ("b", "3"), ("u", "1")]):
        system.learn_one(Rating(f"e{n}", user, item, 4.0, DAY + n))
    system.learn_one(Search("s", "u", "toy", DAY + 100))
    for rec in system.rank("u"):
        assert rec.reasons
        for reason in rec.reasons:
            if reason.kind == "watched":
                assert reason.evidence["item_id"] == "1"
            if reason.kind == "search":
                assert reason.evidence["query"] == "toy"
            if reason.kind == "creator":
                assert reason.evidence["item_id"] == "1"


def test_profiles_live_in_the_mapping_it_is_given(items: list[CatalogItem]) -> None:
    store: dict[str, object] = {}
    system = StreamRecommender(profiles=store)  # type: ignore[arg-type]
    for item in items:
        system.add_item(item)
    system.learn_one(Rating("e1", "u", "1", 4.0, DAY))
    assert set(store) == {"u"}


@pytest.mark.parametrize("rating, sign", [(5.0, 1), (1.0, -1)])
def test_ratings_are_centred(items: list[CatalogItem], rating: float, sign: int) -> None:
    system = _system(items)
    system.learn_one(Rating("e1", "u", "1", rating, DAY))
    profile = system.profile("u")
    assert profile is not None
    assert profile.history[-1].weight * sign > 0


def test_new_reason_only_for_items_added_in_the_last_fortnight(items: list[CatalogItem]) -> None:
    system = _system(items, top_n=20)
    system.add_item(CatalogItem("50", "Fresh", ("Drama",), (), 6000, 2001), ts=30 * DAY)
    system.add_item(CatalogItem("51", "From the future", ("Drama",), (), 6000, 2001), ts=90 * DAY)
    system.learn_one(Rating("e1", "u", "10", 5.0, 31 * DAY))  # as of day 31: "50" is 1 day old, "51" not yet added
    new = {rec.item_id for rec in system.rank("u") for r in rec.reasons if r.kind == "new"}
    assert new == {"50"}


def test_items_without_genres_or_creators_are_ranked_too(items: list[CatalogItem]) -> None:
    system = _system(items, top_n=20)
    system.add_item(CatalogItem("bare", "Untitled", (), (), 0, None))
    system.learn_one(Rating("e1", "u", "bare", 4.0, DAY))
    system.learn_one(Rating("e2", "v", "bare", 4.0, DAY + 1))
    system.learn_one(Rating("e3", "v", "1", 4.0, DAY + 2))
    assert "1" in _ids(system, "u")
    assert len(system.rank("nobody")) == len(items) + 1


def test_a_learnt_profile_is_as_quantized_as_a_decoded_one(items: list[CatalogItem]) -> None:
    """learn_one quantizes only what an event changed; the whole profile must end up as a codec round trip."""
    import copy

    from streamrec.models.profile import UserProfile

    system = _system(items)
    ts = 1_000
    for n, item in enumerate(items * 2):  # the second pass re-rates: history entries are refined, not added
        ts += 1_000
        event = Rating(f"r{n}", "u1", item.item_id, 0.5 + (n * 7 % 10) / 2, ts) if n % 3 else None
        system.learn_one(event or Play(f"p{n}", "u1", item.item_id, 1_000.0 + n * 37.3, ts))
        profile = system.profiles["u1"]
        full = copy.deepcopy(profile)
        full.quantize()
        assert full.history == profile.history and full.genre_weights == profile.genre_weights
        assert full.rating_sum == profile.rating_sum and (full.embedding == profile.embedding).all()
        decoded = UserProfile.from_bytes(profile.to_bytes())
        assert decoded.history == profile.history and decoded.genre_weights == profile.genre_weights
