"""Seeded simulation of the signals MovieLens lacks: plays (watch time), searches and film runtimes.

Pure and deterministic: the same inputs and seed give the same events on every machine. Every random draw is a
keyed hash of (seed, event id), so a rating's play and search do not depend on which other ratings are simulated
with it (a prefix, a tail or the whole dataset give it the same content). `event_stream` is the single source of
the time-ordered input stream; the Kafka replay and the in-process evaluator both consume it, so they see
identical events.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import numpy.typing as npt
from scipy.special import betaincinv

from streamrec.models.dataset import Dataset
from streamrec.models.events import MAX_QUERY_CHARS, CatalogItem, Play, Rating, Search, UserEvent

DEFAULT_SEED = 0

# --- runtimes ----------------------------------------------------------------------------------------------
# Feature films run ~1.5-2 h with a long right tail; a lognormal with median 108 min and sigma 0.2 has a mean
# of ~110 min and puts ~95% of films between 73 and 160 min. Clipped to [70, 200] min, in whole minutes.
RUNTIME_MEDIAN_MINUTES = 108.0
RUNTIME_SIGMA = 0.2
RUNTIME_MIN_MINUTES = 70
RUNTIME_MAX_MINUTES = 200

# --- plays -------------------------------------------------------------------------------------------------
# completion ~ Beta(mean=mu(r), concentration=PLAY_CONCENTRATION), mu(r) = 0.3 + 0.15 * (r - 1) clipped to
# [0.05, 0.95]: 0.30 for 1 star, 0.60 for 3 stars, 0.90 for 5 stars (0.225 for MovieLens' half star).
# People who rate a film low mostly gave up on it; people who loved it mostly finished it.
PLAY_BASE_MEAN = 0.3
PLAY_MEAN_PER_STAR = 0.15
PLAY_CONCENTRATION = 6.0
COMPLETED_THRESHOLD = 0.9

# --- searches ----------------------------------------------------------------------------------------------
DEFAULT_SEARCH_RATE = 0.2  # share of watches preceded by a search
VAGUE_QUERY_PROB = 0.25  # share of searches that name only one of the item's genres, not the film
TWO_WORD_PROB = 0.5  # share of title searches that use two distinctive words (when the title has two)
SEARCH_GAP_MEAN_MS = 20_000  # search -> watch gap: 1 ms + Exponential(mean 20 s), capped at 2 min
SEARCH_GAP_MAX_MS = 120_000
# A word found in more than 1% of the catalog's titles (and in at least 3) is too common to be distinctive.
COMMON_WORD_SHARE = 0.01

_STOP_WORDS_TEXT = """
    a an the and or but of in on at to for from by with without into onto over under about as is are was be
    it its this that these those my your his her our their i you he she we they me him us them not no nor so
    than then too very can will just do does did up down out off all any some s t if when what who how where
    why there here de la le les el los las il der die das des du un une et en y vs part
"""
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
_ALTERNATE_TITLE = re.compile(r"\([^)]*\)")  # "Seven (Se7en)", "Nikita (La Femme Nikita)"


def synthetic_duration_seconds(item_id: str) -> int:
    """A plausible, stable runtime for an item: lognormal, seeded by the item id (see the constants)."""
    digest = hashlib.blake2b(item_id.encode("utf-8"), digest_size=8).digest()
    uniform = (int.from_bytes(digest, "big") + 0.5) / 2.0**64  # in (0, 1): the normal quantile stays finite
    z = NormalDist().inv_cdf(uniform)
    minutes = math.exp(math.log(RUNTIME_MEDIAN_MINUTES) + RUNTIME_SIGMA * z)
    return round(min(max(minutes, RUNTIME_MIN_MINUTES), RUNTIME_MAX_MINUTES)) * 60


def completion_mean(rating: float) -> float:
    """Mean share of the film watched before giving a rating of `rating` stars."""
    return min(max(PLAY_BASE_MEAN + PLAY_MEAN_PER_STAR * (rating - 1.0), 0.05), 0.95)


def event_uniforms(seed: int, event_ids: Sequence[str], purpose: str, k: int) -> npt.NDArray[np.float64]:
    """k uniforms in (0, 1) per event, a keyed hash of (seed, purpose, event id): an event's draws depend on
    nothing else, so any subset, prefix or reordering of the ratings simulates each one the same way (same id,
    same content), and plays and searches (different purposes) are independent."""
    key = seed.to_bytes(16, "big", signed=True)
    person = purpose.encode()[:16]
    digests = b"".join(
        hashlib.blake2b(event_id.encode(), digest_size=8 * k, key=key, person=person).digest() for event_id in event_ids
    )
    words = np.frombuffer(digests, dtype=">u8").reshape(len(event_ids), k)
    return ((words >> np.uint64(11)).astype(np.float64) + 0.5) / 2.0**53


def _durations(items: Iterable[CatalogItem]) -> dict[str, int]:
    return {item.item_id: item.duration_seconds for item in items}


def derive_plays(ratings: Sequence[Rating], items: Iterable[CatalogItem], seed: int) -> list[Play]:
    """One play per rating: every rating implies a watch.

    The play has the rating's ts (it sorts just before the rating), id `<rating id>:play`, and
    watched_seconds = duration x completion, completion ~ Beta(mu(r) * k, (1 - mu(r)) * k) with
    mu(r) = clip(0.3 + 0.15 (r - 1), 0.05, 0.95) and k = 6; `completed` = watched >= 0.9 x duration.
    Items without a duration (or unknown to `items`) get `synthetic_duration_seconds`.
    """
    if not ratings:
        return []
    durations = _durations(items)
    mean = np.array([completion_mean(r.rating) for r in ratings])
    uniform = event_uniforms(seed, [r.event_id for r in ratings], "play", 1)[:, 0]
    # Inverse-CDF sampling: one uniform per event gives its Beta draw.
    completion = np.asarray(betaincinv(mean * PLAY_CONCENTRATION, (1.0 - mean) * PLAY_CONCENTRATION, uniform))
    plays = []
    for rating, share in zip(ratings, completion.tolist(), strict=True):
        duration = durations.get(rating.item_id) or synthetic_duration_seconds(rating.item_id)
        watched = round(duration * share, 1)
        plays.append(
            Play(
                event_id=f"{rating.event_id}:play",
                user_id=rating.user_id,
                item_id=rating.item_id,
                watched_seconds=watched,
                ts=rating.ts,
                # From the rounded value, so that `completed` agrees with watched / duration downstream.
                completed=watched >= COMPLETED_THRESHOLD * duration,
            )
        )
    return plays


def title_words(title: str) -> list[str]:
    """Lower-cased words of a title, in order, without the possessive 's (people type "schindler list")."""
    return [word.removesuffix("'s") for word in _WORD.findall(title.casefold())]


@dataclass(frozen=True, slots=True)
class _QueryVocabulary:
    """Per item: its distinctive title words and genre names, as a user would type them."""

    words: dict[str, tuple[str, ...]]  # distinctive title words, in title order
    rarest: dict[str, tuple[str, ...]]  # the same words, rarest in the catalog first (ties: words, then title order)
    genres: dict[str, tuple[str, ...]]
    titles: dict[str, str]

    @classmethod
    def build(cls, items: Iterable[CatalogItem]) -> _QueryVocabulary:
        catalog = list(items)
        # People type the main title, not the alternate one in parentheses (unless that is all there is).
        tokens = {
            item.item_id: title_words(_ALTERNATE_TITLE.sub(" ", item.title)) or title_words(item.title)
            for item in catalog
        }
        document_frequency = Counter(word for words in tokens.values() for word in set(words))
        common_above = max(3.0, COMMON_WORD_SHARE * len(catalog))

        def distinctive(word: str) -> bool:
            return (
                word not in STOP_WORDS
                and document_frequency[word] <= common_above
                and (len(word) > 1 or word.isdigit())
            )

        words = {item_id: tuple(w for w in dict.fromkeys(ws) if distinctive(w)) for item_id, ws in tokens.items()}
        rarest = {
            item_id: tuple(sorted(ws, key=lambda w: (document_frequency[w], w.isdigit())))
            for item_id, ws in words.items()
        }
        genres = {item.item_id: tuple(g.casefold() for g in item.genres) for item in catalog}
        titles = {item.item_id: item.title.casefold()[:MAX_QUERY_CHARS] for item in catalog}
        return cls(words, rarest, genres, titles)

    def query(self, item_id: str, *, vague: bool, two_words: bool, pick: float) -> str:
        """A genre (vague, or the title has no distinctive word), else the 1-2 rarest title words in order."""
        genres = self.genres[item_id]
        if genres and (vague or not self.words[item_id]):
            return genres[int(pick * len(genres))]
        chosen = set(self.rarest[item_id][: 2 if two_words else 1])
        if chosen:
            return " ".join(w for w in self.words[item_id] if w in chosen)
        return self.titles[item_id]


def simulate_searches(
    ratings: Sequence[Rating],
    items: Iterable[CatalogItem],
    seed: int,
    rate: float = DEFAULT_SEARCH_RATE,
) -> list[Search]:
    """Searches users make before some watches (each watch independently, with probability `rate`).

    A search looks for the watched item the way people type: with probability 0.75 one or two (50/50, when
    the title has two) distinctive words of its title — the rarest ones in the catalog, written in title
    order; stop words and words found in more than 1% of the catalog's titles (and at least 3) never count —
    otherwise (probability 0.25, the vaguer query) one of its genre names. A title without distinctive words
    falls back to a genre, an item without genres to its whole title.
    ts = rating ts - gap, gap = 1 ms + Exponential(mean 20 s) capped at 2 min, and no further back than the
    user's previous rating among `ratings` when there is room (the search belongs to this watch; the only
    part of a search that depends on the other ratings given). Id `<rating id>:search`.
    `clicked_item_id` stays empty: the watch that follows is the outcome, and naming it in the search would
    leak the next item to whoever learns from the search before the watch.
    Ratings of items missing from `items` get no search.
    """
    return [search for _, search in _indexed_searches(ratings, items, seed, rate)]


def _indexed_searches(
    ratings: Sequence[Rating], items: Iterable[CatalogItem], seed: int, rate: float
) -> list[tuple[int, Search]]:
    """`simulate_searches`, each search with the index of the rating it precedes."""
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"search rate must be in [0, 1], got {rate}")
    if not ratings:
        return []
    vocabulary = _QueryVocabulary.build(items)
    draws = event_uniforms(seed, [r.event_id for r in ratings], "search", 5)
    searched = (draws[:, 0] < rate).tolist()
    vague = (draws[:, 1] < VAGUE_QUERY_PROB).tolist()
    two_words = (draws[:, 2] < TWO_WORD_PROB).tolist()
    pick = draws[:, 3].tolist()
    exponential = -SEARCH_GAP_MEAN_MS * np.log1p(-draws[:, 4])
    gaps = np.minimum(1 + np.floor(exponential), SEARCH_GAP_MAX_MS)

    searches: list[tuple[int, Search]] = []
    previous_ts: dict[str, int] = {}
    for i, (rating, gap_ms) in enumerate(zip(ratings, gaps.astype(np.int64).tolist(), strict=True)):
        last = previous_ts.get(rating.user_id)
        previous_ts[rating.user_id] = rating.ts
        if not searched[i] or rating.item_id not in vocabulary.titles:
            continue
        query = vocabulary.query(rating.item_id, vague=vague[i], two_words=two_words[i], pick=pick[i])
        room = rating.ts - last - 1 if last is not None else gap_ms
        ts = max(rating.ts - min(gap_ms, max(room, 1)), 0)
        searches.append((i, Search(f"{rating.event_id}:search", rating.user_id, query, ts)))
    return searches


# Ties at the same ts: a rating's search, then its play, then the rating; real searches after derived events.
_SEARCH, _PLAY, _RATING = 0, 1, 2


def event_stream(
    dataset: Dataset,
    *,
    plays: bool = True,
    searches: bool = False,
    seed: int = DEFAULT_SEED,
    search_rate: float = DEFAULT_SEARCH_RATE,
) -> list[UserEvent]:
    """The merged, deterministic, time-ordered input stream of a dataset.

    Always the ratings; with `plays`, one derived play per rating; with `searches`, the dataset's own
    searches (MovieLens tags) plus simulated ones (`search_rate` 0 turns the simulation off). Sorted by ts;
    ties keep the dataset order, and for one rating: search < play < rating.

    A dataset with recorded plays (KuaiRand) gives those instead, merged with its ratings by ts, plays first at
    equal ts (each rating follows its own play), source order otherwise; it has no searches to simulate from
    (its titles are synthetic).
    """
    if dataset.plays:
        if searches:
            raise ValueError(f"{dataset.name} has synthetic titles: no searches can be simulated from them")
        if not plays:
            return list(dataset.ratings)
        recorded: tuple[UserEvent, ...] = dataset.plays
        ratings: tuple[UserEvent, ...] = dataset.ratings
        return list(heapq.merge(recorded, ratings, key=lambda event: event.ts))
    events: list[UserEvent] = list(dataset.ratings)
    ts = [r.ts for r in dataset.ratings]
    sequence = list(range(len(dataset.ratings)))
    kind = [_RATING] * len(dataset.ratings)

    def add(new: Sequence[tuple[int, UserEvent]], kind_rank: int) -> None:
        for position, event in new:
            events.append(event)
            ts.append(event.ts)
            sequence.append(position)
            kind.append(kind_rank)

    if plays:
        add(list(enumerate(derive_plays(dataset.ratings, dataset.items, seed))), _PLAY)
    if searches:
        if search_rate:
            add(_indexed_searches(dataset.ratings, dataset.items, seed, search_rate), _SEARCH)
        offset = len(dataset.ratings)
        add([(offset + j, s) for j, s in enumerate(dataset.searches)], _SEARCH)
    # Index sort (no per-event key tuples): lexsort's last key is the primary one.
    order = np.lexsort((np.array(kind), np.array(sequence), np.array(ts, dtype=np.int64)))
    return [events[i] for i in order.tolist()]
