"""The item side stands alone: a ranker built on it (and the parameters) alone ranks as the recommender does,
the co-occurrence turns sparse past `exact_max_items`, and a consumption is paired and counted."""

from __future__ import annotations

from streamrec.models.cooccurrence import Cooccurrence
from streamrec.models.events import CatalogItem, Play, Rating, Search
from streamrec.models.item_model import content_only_model
from streamrec.models.item_side import ItemSide
from streamrec.models.params import StreamParams
from streamrec.models.ranking import Ranker
from streamrec.models.recommender import StreamRecommender
from streamrec.models.sparse_cooccurrence import SparseCooccurrence

DAY = 86_400_000


def test_a_ranker_on_the_item_side_alone_gives_the_recommenders_lists(items: list[CatalogItem]) -> None:
    params = StreamParams(top_n=5)
    rec = StreamRecommender(params)
    rec.add_items([(item, 0) for item in items])
    for n, event in enumerate(
        [Rating("e1", "u", "1", 5.0, DAY), Play("e2", "u", "4", 4000.0, DAY + 1), Search("e3", "u", "alien", DAY + 2)]
    ):
        assert rec.learn_one(event), n
    profiles = [rec.profile("u"), None]
    expected = rec.rank_many(profiles)
    assert Ranker(rec.item_side, params).rank_many(profiles, 5) == expected
    assert rec.catalog is rec.item_side.catalog and rec.item_vectors is rec.item_side.vectors


def test_the_cooccurrence_turns_sparse_past_exact_max_items(items: list[CatalogItem]) -> None:
    side = ItemSide(StreamParams(exact_max_items=len(items)), content_only_model())
    side.add_items([(item, 0) for item in items])
    assert isinstance(side.cooccurrence, Cooccurrence) and not side.sparse
    side.add_items([(CatalogItem("extra", "Extra", ("Drama",)), 0)])
    assert isinstance(side.cooccurrence, SparseCooccurrence) and side.sparse
    assert side.cooccurrence.n_items == len(items) + 1


def test_a_consumption_is_paired_with_the_recent_ones_and_counted(items: list[CatalogItem]) -> None:
    side = ItemSide(StreamParams(), content_only_model())
    side.add_items([(item, 0) for item in items])
    side.record_consumption(0, [], DAY)
    side.record_consumption(1, [0, -1], DAY + 1)
    assert side.cooccurrence.item_counts[:2].tolist() == [1.0, 1.0]
    assert isinstance(side.cooccurrence, Cooccurrence) and side.cooccurrence.counts[0, 1] == 1.0
    assert side.trending.counts[:2].tolist() == [1, 1]
    assert side.advance_trending(DAY + 8 * DAY) == 9 * DAY  # a week later: out of the window
    assert side.trending.counts[:2].tolist() == [0, 0]
    assert side.advance_trending(0) == 9 * DAY  # never back
