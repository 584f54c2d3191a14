"""Item signals: what learning emits instead of changing the item side, folded into any item side in log order to
the counts learning in place gives; and counts quoted with a log position are checked in the log's order."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from streamrec.models.base import Reason
from streamrec.models.cooccurrence import Cooccurrence
from streamrec.models.evaluate import GroundTruth
from streamrec.models.events import DAY_MS, CatalogItem, Play, Rating, Search, UserEvent
from streamrec.models.item_model import content_only_model
from streamrec.models.item_side import ItemSide
from streamrec.models.item_signals import ItemSignal
from streamrec.models.params import StreamParams
from streamrec.models.recommender import StreamRecommender

ITEMS = [
    CatalogItem("A", "Alpha", ("Action",), ("ann",), 5400),
    CatalogItem("B", "Beta", ("Action", "Comedy"), ("bob",), 6000),
    CatalogItem("C", "Gamma", ("Comedy",), ("ann",), 4800),
    CatalogItem("D", "Delta", ("Drama",), ("dan",), 7200),
    CatalogItem("E", "Epsilon", ("Drama", "Romance"), ("eve",), 6600),
    CatalogItem("F", "Phi", ("Horror",), ("fay",), 5100),
]
# A short window and pairing window, so streams of a few events expire views and truncate the recent items.
PARAMS = StreamParams(trending_window_days=2, cooccurrence_window=3)


def fresh_side(params: StreamParams = PARAMS) -> ItemSide:
    side = ItemSide(params, content_only_model())
    side.add_items([(item, 0) for item in ITEMS])
    return side


def recommender(**kwargs: object) -> StreamRecommender:
    system = StreamRecommender(PARAMS, **kwargs)  # type: ignore[arg-type]
    system.add_items([(item, 0) for item in ITEMS])
    return system


# (user, item or None for a search, rating or None for a play, ts in hours, deliver twice)
raw_events = st.lists(
    st.tuples(
        st.integers(0, 3),
        st.none() | st.sampled_from([item.item_id for item in ITEMS]),
        st.none() | st.floats(1.0, 5.0),
        st.integers(0, 24 * 8),  # over eight days, in any order: views arrive out of time order too
        st.booleans(),
    ),
    max_size=40,
)


def as_events(raw: list[tuple[int, str | None, float | None, int, bool]]) -> list[UserEvent]:
    events: list[UserEvent] = []
    for n, (user, item, rating, hours, twice) in enumerate(raw):
        ts = DAY_MS + hours * 3_600_000
        event: UserEvent
        if item is None:
            event = Search(f"e{n}", f"u{user}", "alpha", ts)
        elif rating is None:
            event = Play(f"e{n}", f"u{user}", item, 3000.0, ts)
        else:
            event = Rating(f"e{n}", f"u{user}", item, rating, ts)
        events += [event, event] if twice else [event]
    return events


def assert_same_counts(side: ItemSide, expected: ItemSide) -> None:
    cooc, want = side.cooccurrence, expected.cooccurrence
    assert isinstance(cooc, Cooccurrence) and isinstance(want, Cooccurrence)
    n = len(ITEMS)
    np.testing.assert_array_equal(cooc.counts[:n, :n], want.counts[:n, :n])
    np.testing.assert_array_equal(cooc.item_counts[:n], want.item_counts[:n])
    np.testing.assert_array_equal(side.trending.counts[:n], expected.trending.counts[:n])
    assert side.trending.now == expected.trending.now


@settings(max_examples=60, deadline=None)
@given(raw_events)
def test_folding_the_recorded_signals_gives_the_counts_of_learning_in_place(
    raw: list[tuple[int, str | None, float | None, int, bool]],
) -> None:
    events = as_events(raw)
    in_place = recommender()
    signals: list[ItemSignal] = []
    emitting = recommender(item_signals=signals.append)
    learnt = [in_place.learn_one(event) for event in events]
    assert [emitting.learn_one(event) for event in events] == learnt

    assert len(signals) == sum(learnt)  # one signal per learnt event, none for a duplicate
    assert not emitting.cooccurrence.item_counts.any() and emitting.trending.now == 0  # its item side untouched
    folded = fresh_side()
    folded.position = 0  # the fold of an empty log (as the worker and `Deployment` start theirs)
    for position, signal in enumerate(signals, start=1):
        folded.apply(signal, position)
    assert folded.position == len(signals)
    assert_same_counts(folded, in_place.item_side)
    assert in_place.item_side.position is None  # no log: the counts name no position


def test_a_first_consumption_carries_its_item_and_the_recent_items_oldest_first() -> None:
    signals: list[ItemSignal] = []
    system = recommender(item_signals=signals.append)
    events: list[UserEvent] = [
        Rating("e1", "u", "A", 4.0, 10),
        Play("e2", "u", "B", 100.0, 20),
        Search("e3", "u", "delta", 30),
        Play("e4", "u", "C", 100.0, 40),
        Rating("e5", "u", "B", 5.0, 50),  # a rating after the play: not a first consumption
        Play("e6", "u", "D", 100.0, 60),
        Play("e7", "u", "E", 100.0, 70),
    ]
    for event in events:
        system.learn_one(event)
    # A first consumption also carries its credit for each candidate blend; the rest none.
    grid = system.item_side.blend.credit.shape[0]
    assert [len(signal.feedback) for signal in signals] == [grid, grid, 0, grid, 0, grid, grid]
    assert [ItemSignal(s.ts, s.item_id, s.recent) for s in signals] == [
        ItemSignal(10, "A", ()),
        ItemSignal(20, "B", ("A",)),
        ItemSignal(30),
        ItemSignal(40, "C", ("A", "B")),
        ItemSignal(50),
        ItemSignal(60, "D", ("A", "C", "B")),  # B moved to the end when its rating refined it
        ItemSignal(70, "E", ("C", "B", "D")),  # the last `cooccurrence_window` only
    ]


def test_folding_the_log_learns_the_blend_from_the_feedback_in_any_order() -> None:
    signals: list[ItemSignal] = []
    emitting = recommender(item_signals=signals.append)
    events: list[UserEvent] = [
        Play(f"e{k}", f"u{k % 3}", item, 100.0, 10 * k) for k, item in enumerate("ABCADBECAB", start=1)
    ]
    for event in events:
        emitting.learn_one(event)
    forward, backward = fresh_side(), fresh_side()
    for position, signal in enumerate(signals, start=1):
        forward.apply(signal, position)
    for position, signal in enumerate(reversed(signals), start=1):
        backward.apply(signal, position)
    expected = [0] * forward.blend.credit.shape[0]
    for signal in signals:
        for index in signal.feedback:  # the indices of the blends the consumption credits
            expected[index] += 1
    assert forward.blend.updates == backward.blend.updates == sum(1 for s in signals if s.feedback) > 0
    assert forward.blend.credit.tolist() == backward.blend.credit.tolist() == expected
    assert forward.blend.weights == backward.blend.weights
    assert emitting.item_side.blend.updates == 0  # the emitter's item side changes only as the log is folded


def test_a_signal_for_an_item_the_catalog_lacks_only_moves_the_window_and_the_position() -> None:
    side = fresh_side()
    side.apply(ItemSignal(DAY_MS, "A", ()), 1)
    side.apply(ItemSignal(2 * DAY_MS, "unknown", ("A",)), 2)
    side.apply(ItemSignal(3 * DAY_MS, "B", ("unknown", "A")), 3)
    cooc = side.cooccurrence
    assert isinstance(cooc, Cooccurrence)
    a, b = side.catalog.row_of["A"], side.catalog.row_of["B"]
    assert cooc.item_counts[: len(ITEMS)].sum() == 2.0 and cooc.counts[a, b] == cooc.counts[b, a] == 1.0
    assert cooc.counts.sum() == 2.0  # the unknown recent item paired with nothing
    assert (side.position, side.trending.now) == (3, 3 * DAY_MS)
    assert side.trending.counts[a] == 0 and side.trending.counts[b] == 1  # A left the 2-day window


def _claims(truth: GroundTruth, kind: str, count: int, state: int | None) -> bool:
    evidence = {"count": str(count), "as_of": str(3 * DAY_MS)}
    if kind == "trending":
        evidence["window_days"] = "7"
    if state is not None:
        evidence["state"] = str(state)
    return truth.verify(Reason(kind, "", evidence), "someone", "A", 3 * DAY_MS, as_of=1)


def test_counts_that_name_a_log_position_are_checked_in_the_logs_order() -> None:
    # Stream order: u1 watches A, then u2 watches B. The log folded them the other way round.
    first, second = Rating("e1", "u1", "A", 4.0, DAY_MS), Rating("e2", "u2", "B", 4.0, DAY_MS + 1)
    truth = GroundTruth(ITEMS)
    for event in (first, second):
        truth.observe(event)
    for kind in ("popular", "trending"):
        # After one event: A has one view in the stream's order, none in the log's.
        assert _claims(truth, kind, 1, state=1) and not _claims(truth, kind, 0, state=1), kind
        truth.log_order = GroundTruth(ITEMS)
        for event in (second, first):
            truth.log_order.observe(event)
        assert _claims(truth, kind, 0, state=1) and not _claims(truth, kind, 1, state=1), kind
        assert _claims(truth, kind, 1, state=2)  # both orders agree once both are folded
        assert not _claims(truth, kind, 1, state=3)  # a position past the log's end proves nothing
        # Without a position the count is the list's own (the stream's order, `as_of` interactions).
        assert _claims(truth, kind, 1, state=None) and not _claims(truth, kind, 0, state=None), kind
        truth.log_order = None
    assert truth.seq_after(0) == 0 and truth.seq_after(1) == 1 and truth.seq_after(2) == 2
