"""streamrec's recommender: incremental user profiles + real-time item co-occurrence + search intent,
calibrated, capped and explained. The worker and the evaluator run exactly this code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping, Sequence
from contextlib import contextmanager

import numpy as np
import numpy.typing as npt

from streamrec.models.base import Recommendation, Recommender
from streamrec.models.candidate_ranking import CandidateRanker
from streamrec.models.catalog import Catalog
from streamrec.models.cooccurrence import Cooccurrence, TrendingCounter
from streamrec.models.embedding_updates import EmbeddingUpdates
from streamrec.models.events import CatalogItem, Play, Rating, Search, UserEvent
from streamrec.models.item_model import ItemModel, content_only_model
from streamrec.models.item_side import ItemSide
from streamrec.models.item_signals import ItemSignal
from streamrec.models.params import StreamParams
from streamrec.models.profile import EncodedProfiles, HistoryEntry, SearchEntry, UserProfile, quantized
from streamrec.models.ranking import RankedLists, Ranker
from streamrec.models.sparse_cooccurrence import SparseCooccurrence
from streamrec.models.text import hash64

CONTENDERS_PER_COMPONENT = 20  # the strongest items of each component the consumed one is ranked against

__all__ = ["StreamParams", "StreamRecommender", "preference"]  # StreamParams: where the streams side finds it


def preference(event: Rating | Play, profile: UserProfile, duration_s: int) -> float:
    """Signed strength of a consumption: a centred rating, or engagement (watched share) above a bail-out."""
    if isinstance(event, Rating):
        return (event.rating - profile.rating_mean) / 2.0
    if event.completed:
        engagement = 1.0
    elif duration_s > 0:
        engagement = min(event.watched_seconds / duration_s, 1.0)
    else:
        engagement = 0.5
    return engagement - 0.25


def _partition(origin: tuple[str, int, int]) -> str:
    return f"{origin[0]}:{origin[1]}"


def _learnt(profile: UserProfile, origin: tuple[str, int, int]) -> bool:
    """A viewer's records on one input partition come in offset order: one at or before the last learnt was learnt."""
    return origin[2] <= profile.offsets.get(_partition(origin), -1)


class StreamRecommender(Recommender):
    name = "streamrec"

    def __init__(
        self,
        params: StreamParams | None = None,
        item_model: ItemModel | None = None,
        profiles: MutableMapping[str, UserProfile] | None = None,
        *,
        item_side: ItemSide | None = None,
        item_signals: Callable[[ItemSignal], None] | None = None,
    ) -> None:
        """`item_signals`: where each learnt event's `ItemSignal` goes when the item side is the fold of a shared
        log (several workers); the item side (`item_side`, possibly shared) then changes only as the log is
        applied to it. Without it, learning changes this recommender's item side at once."""
        self.params = params or StreamParams()
        self.item_side = item_side or ItemSide(self.params, item_model or content_only_model())
        self._emit = item_signals
        self.profiles: MutableMapping[str, UserProfile] = profiles if profiles is not None else {}
        self._ranker: Ranker = Ranker(self.item_side, self.params)
        self._deferred: EmbeddingUpdates | None = None  # inside `learning_batch`

    # -- item side ---------------------------------------------------------------------------------------
    @property
    def catalog(self) -> Catalog:
        return self.item_side.catalog

    @property
    def item_model(self) -> ItemModel:
        return self.item_side.item_model

    @property
    def item_vectors(self) -> npt.NDArray[np.float32]:
        """Rows: [ALS factors (zeros where untrained), content]; refreshed when the catalog or model changes."""
        return self.item_side.vectors

    @property
    def cooccurrence(self) -> Cooccurrence | SparseCooccurrence:
        return self.item_side.cooccurrence

    @property
    def trending(self) -> TrendingCounter:
        return self.item_side.trending

    def set_item_model(self, model: ItemModel) -> None:
        """Swap in a new artifact: new item factors, and its co-occurrence snapshot as a warm start."""
        self.item_side.set_item_model(model)

    def add_item(self, item: CatalogItem, ts: int = 0) -> None:
        self.add_items([(item, ts)])

    def add_items(self, items: Sequence[tuple[CatalogItem, int]]) -> None:
        """Add items or replace their metadata, as `add_item` one by one (a worker's start: the whole catalog).
        Past `exact_max_items` ranking switches to candidates (`use_candidate_ranking`)."""
        self.item_side.add_items(items)
        self.follow_item_side()

    def remove_items(self, item_ids: Sequence[str]) -> list[str]:
        """Remove items (catalog tombstones): never ranked again, no reason's evidence, their events rejected as
        unknown items; publishing one again brings it back. Returns the ids that were in the catalog."""
        return self.item_side.remove_items(item_ids)

    def follow_item_side(self) -> None:
        """Rank as the item side now asks (candidates once it is sparse): for an item side another recommender
        changed."""
        if self.item_side.sparse and type(self._ranker) is Ranker:
            self.use_candidate_ranking()

    def use_candidate_ranking(self, *, exhaustive: bool = False) -> None:
        """Switch to what a large catalog needs (the switch happens by itself past `exact_max_items`): sparse
        co-occurrence, and scoring each user's candidates only (`exhaustive`: every item, the reference)."""
        self.item_side.use_sparse_cooccurrence()
        self._ranker = CandidateRanker(self.item_side, self.params, exhaustive=exhaustive)

    def prepare_ranking(self, vectors: npt.NDArray[np.float32] | None = None) -> None:
        """Build the ranker's indexes for the catalog as it is (the worker calls this once it is loaded).
        `vectors`: `item_vectors` taken before, to build from another thread while the catalog may change."""
        self._ranker.prepare(self.item_vectors if vectors is None else vectors)

    @property
    def index_builds(self) -> int:
        """Times the ranker built its item index (each blocks ranking for a moment)."""
        return self._ranker.index_builds

    # -- learning ----------------------------------------------------------------------------------------
    def profile(self, user_id: str) -> UserProfile | None:
        self.settle()
        return self.profiles.get(user_id)

    @contextmanager
    def learning_batch(self) -> Iterator[None]:
        """Within it, `learn_one` queues each embedding update and the block's exit applies them together,
        vectorised across the batch's viewers (`EmbeddingUpdates`): the same profiles, bit for bit. A read
        through `profile` or any ranking inside the block applies the queue first. The profiles must stay live
        objects meanwhile (a dict, or a `ProfileOverlay`: a store that encodes on every write would save them
        before their embeddings moved)."""
        if self._deferred is not None:  # nested: the outer block applies
            yield
            return
        if isinstance(self.profiles, EncodedProfiles):
            raise TypeError("learning_batch needs live profiles: wrap the store in a ProfileOverlay")
        self._deferred = EmbeddingUpdates(self.params.embedding_decay)
        try:
            yield
        finally:
            deferred, self._deferred = self._deferred, None
            deferred.apply()

    def settle(self) -> None:
        """Apply the embedding updates `learning_batch` has queued so far."""
        if self._deferred is not None:
            self._deferred.apply()

    def forget(self, user_id: str) -> bool:
        """Erase a viewer (a deletion request): the whole profile goes (embedding, history, watched set, genre
        weights, searches, the event-id dedupe window, the input offsets), so their next event starts a fresh one.
        What their events taught the item side stays: co-occurrence, popularity and trending counts are anonymous
        aggregates. True if there was a profile."""
        if user_id not in self.profiles:
            return False
        del self.profiles[user_id]
        return True

    def applied(self, user_id: str, origin: tuple[str, int, int]) -> bool:
        """Was the input record `origin` (topic, partition, offset) of this viewer learnt already?"""
        profile = self.profiles.get(user_id)
        return profile is not None and _learnt(profile, origin)

    def learn_one(self, event: UserEvent, origin: tuple[str, int, int] | None = None) -> bool:
        """Learn one event; False for one already learnt (by its input record `origin`, topic, partition and
        offset, when it came from one; else by its event id among the viewer's recent ones)."""
        p = self.params
        profile = self.profiles.get(event.user_id) or UserProfile.new(event.user_id, self.item_vectors.shape[1])
        if origin is not None and _learnt(profile, origin):
            return False
        event_hash = hash64(event.event_id)
        if event_hash in profile.event_ids:
            return False
        # An unknown item raises before the profile changes: a batch overlay holds the live object.
        row = None if isinstance(event, Search) else self.catalog.row_of[event.item_id]
        if origin is not None:
            profile.offsets[_partition(origin)] = origin[2]
        profile.event_ids.append(event_hash)
        del profile.event_ids[: -p.dedupe_window]
        profile.n_events += 1
        profile.last_ts = max(profile.last_ts, event.ts)
        if self._emit is None:
            self.item_side.advance_trending(event.ts)
        signal = None
        if isinstance(event, Search):
            profile.searches.append(SearchEntry(event.query, event.ts))
            del profile.searches[: -p.searches_kept]
        else:
            assert row is not None
            signal = self._learn_consumption(profile, event, row)
            # As the codec would: learning through a batch overlay (no encode/decode between events) stays
            # exact. Only what this event changed: the rest was quantized already (rounding is idempotent).
            # A queued embedding update quantizes when it is applied.
            profile.quantize_latest(self.catalog.item_genre_names(row), embedding=self._deferred is None)
        self.profiles[event.user_id] = profile  # write back: in the worker this is the changelogged table
        if self._emit is not None:
            self._emit(signal or ItemSignal(event.ts))
        return True

    def _learn_consumption(self, profile: UserProfile, event: Rating | Play, row: int) -> ItemSignal | None:
        """Learn a consumption into the profile; the item side learns a first one (returned as a signal when the
        item side is a shared log's fold)."""
        p = self.params
        item = self.catalog.items[row]
        weight = preference(event, profile, item.duration_seconds)
        if isinstance(event, Rating):
            profile.rating_sum += event.rating
            profile.rating_count += 1
        item_hash = self.catalog.hashes[row]  # hash64(event.item_id), computed once per catalog row
        first_time = item_hash not in profile.watched
        signal = None
        if first_time:
            feedback = self._feedback(profile, row) if self.params.learn_blend else ()
            profile.watched.add(item_hash)
            recent_entries = profile.history[-p.cooccurrence_window :]
            if self._emit is None:
                row_of = self.catalog.row_of
                self.item_side.record_consumption(row, [row_of.get(h.item_id, -1) for h in recent_entries], event.ts)
                if feedback:
                    self.item_side.learn_blend(feedback)
            else:
                signal = ItemSignal(event.ts, event.item_id, tuple(h.item_id for h in recent_entries), feedback)
            cols = self.catalog.item_genre_cols[row]
            genres, genre_weights = self.catalog.genres, profile.genre_weights
            for col in cols:
                name = genres[col]
                genre_weights[name] = genre_weights.get(name, 0.0) + 1.0 / len(cols)
        else:  # a rating after a play (or a re-watch): refine the entry, don't count the item twice
            item_id = event.item_id
            kept, previous = [], None
            for h in profile.history:
                if h.item_id == item_id:
                    previous = h
                else:
                    kept.append(h)
            profile.history = kept
            if previous is not None:
                weight = 0.5 * (weight + previous.weight)
        profile.history.append(HistoryEntry(event.item_id, weight, event.ts))
        del profile.history[: -p.history_size]
        vectors = self.item_vectors
        if profile.embedding.shape[0] != vectors.shape[1]:
            self.settle()  # the embedding is rebuilt from the history: what was queued for it is superseded
            profile.embedding = self._embedding_from_history(profile)
            if self._deferred is not None:
                profile.embedding = quantized(profile.embedding)
        elif self._deferred is not None:
            self._deferred.add(profile, vectors, row, weight)
        else:
            profile.embedding *= p.embedding_decay
            profile.embedding += weight * vectors[row]
        return signal

    def _feedback(self, profile: UserProfile, row: int) -> tuple[int, ...]:
        """The consumption of `row` as feedback on the blend (`blend.Blend.hits`), from the viewer's state before
        it: the item against the strongest contenders of each component the viewer has not consumed (the items with
        the highest co-occurrence score for them, the most popular and the most recently viewed), every value as
        the rankers scale them. O(contenders) beyond the co-occurrence scores the rankers compute too."""
        history, weights = self._ranker.recent_history(profile)
        embedding = profile.embedding if profile.embedding.shape[0] == self.item_vectors.shape[1] else None
        return self.item_side.feedback(row, history, weights, profile.watched, embedding, CONTENDERS_PER_COMPONENT)

    def _embedding_from_history(self, profile: UserProfile) -> npt.NDArray[np.float32]:
        vectors = self.item_vectors
        emb = np.zeros(vectors.shape[1], dtype=np.float32)
        for entry in profile.history:
            emb *= self.params.embedding_decay
            row = self.catalog.row_of.get(entry.item_id)
            if row is not None:
                emb += entry.weight * vectors[row]
        return emb

    # -- ranking -----------------------------------------------------------------------------------------
    def rank(self, user_id: str, n: int | None = None) -> list[Recommendation]:
        return self.rank_profile(self.profiles.get(user_id), n or self.params.top_n)

    def rank_profile(self, profile: UserProfile | None, n: int) -> list[Recommendation]:
        self.settle()
        return self._ranker.rank_many([profile], n)[0]

    def rank_many(self, profiles: Sequence[UserProfile | None], n: int | None = None) -> list[list[Recommendation]]:
        """`[rank_profile(p, n) for p in profiles]`, computed together (the same lists, bit for bit)."""
        self.settle()
        return self._ranker.rank_many(profiles, self.params.top_n if n is None else n)

    def rank_lists(self, profiles: Sequence[UserProfile | None], n: int | None = None) -> RankedLists:
        """`rank_many`'s lists in compact form (what the worker publishes: `RankedLists.json_items`)."""
        self.settle()
        return self._ranker.rank_lists(profiles, self.params.top_n if n is None else n)
