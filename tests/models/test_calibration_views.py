"""The evaluator's two shortcuts rank what streamrec on its own would: a second calibration weight ranked from the
state another streamrec learns, and live profiles where the worker keeps them encoded."""

from streamrec.models.evaluate.calibration_views import CalibrationView
from streamrec.models.evaluate.prequential import prequential
from streamrec.models.events import CatalogItem, Play, Rating, UserEvent
from streamrec.models.params import StreamParams
from streamrec.models.recommender import StreamRecommender


def _stream() -> tuple[list[CatalogItem], list[UserEvent]]:
    items = [CatalogItem(f"i{k}", f"title {k}", genres=(f"g{k % 4}",), creators=(f"c{k % 5}",)) for k in range(30)]
    events: list[UserEvent] = []
    for t in range(400):
        user, item = f"u{t % 23}", f"i{(t * 7 + t // 23) % 30}"
        event = Rating(f"e{t}", user, item, 1.0 + (t % 9) / 2, t * 60_000) if t % 3 else None
        events.append(event or Play(f"e{t}", user, item, 30.0 + t % 90, t * 60_000))
    return items, events


def test_a_view_ranks_what_its_own_learner_would() -> None:
    items, events = _stream()
    learner = StreamRecommender(StreamParams(calibration_weight=0.6))
    systems = {
        "learner": learner,
        "view": CalibrationView(learner, 0.0),
        "alone": StreamRecommender(StreamParams(calibration_weight=0.0)),
    }
    results = prequential(events, items, systems, skip_unused_lists=False)
    assert results["view"].hr == results["alone"].hr
    assert results["view"].miscalibration == results["alone"].miscalibration
    assert results["view"].miscalibration != results["learner"].miscalibration  # another weight: other lists
    for user in {event.user_id for event in events}:
        assert systems["view"].rank(user, 20) == systems["alone"].rank(user, 20)


def test_live_profiles_rank_alike() -> None:
    """The evaluator keeps profiles live; the worker keeps them encoded (its RocksDB table): the same lists."""
    from streamrec.models.profile import EncodedProfiles

    items, events = _stream()
    systems = {"live": StreamRecommender(), "encoded": StreamRecommender(profiles=EncodedProfiles())}
    lists: dict[str, list[tuple[str, ...]]] = {"live": [], "encoded": []}
    prequential(events, items, systems, skip_unused_lists=False, on_point=lambda name, p: lists[name].append(p.items))
    assert lists["live"] == lists["encoded"] and len(lists["live"]) > 100
    for user in {event.user_id for event in events}:
        assert systems["live"].rank(user, 20) == systems["encoded"].rank(user, 20)
