"""Seeded synthetic workloads: catalogs (genres, creators, titles) and user events with Zipf-like popularity.

Everything is a pure function of its arguments and `seed`: the same call gives byte-identical records on every
machine, so two benchmark runs (or two phases of one run) offer exactly the same work.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import orjson

from streamrec.models.events import CatalogItem, event_to_dict
from streamrec.models.simulate import synthetic_duration_seconds

ML_100K = "ml-100k"
SYNTHETIC_100K = "synthetic-100k"
CATALOG_NAMES = (ML_100K, SYNTHETIC_100K)
ML_100K_ITEMS = 1_682
SYNTHETIC_100K_ITEMS = 100_000

RATINGS, PLAYS, SEARCHES = "ratings", "plays", "searches"
DEFAULT_MIX: tuple[float, float, float] = (0.45, 0.45, 0.10)  # ratings, plays, searches
# MovieLens-like star distribution (1..5).
STAR_PROBS = (0.06, 0.11, 0.27, 0.34, 0.22)

GENRES = (
    "Drama",
    "Comedy",
    "Thriller",
    "Action",
    "Romance",
    "Adventure",
    "Crime",
    "Sci-Fi",
    "Horror",
    "Documentary",
    "Animation",
    "Children's",
    "Mystery",
    "Fantasy",
    "War",
    "Musical",
    "Western",
    "Film-Noir",
    "Biography",
    "History",
)
_ADJECTIVES = (
    "Silent Copper Hollow Amber Crimson Distant Golden Iron Lost Midnight Northern Paper Quiet Restless Salt "
    "Scarlet Secret Shattered Silver Small Southern Stolen Velvet Wandering Wild Winter Broken Burning Frozen "
    "Hidden Last Lonely Painted Sleeping Twisted Electric Glass Bitter Brave Pale"
).split()
_NOUNS = (
    "Harbor Orchard Lantern Engine Comet Meadow Almanac Machinery Choir Signal Orchestra Canyon River Kingdom "
    "Garden Station Mirror Letter Island Shadow Empire Promise Season Bridge Forest Highway Voyage Circus "
    "Frontier Horizon Citadel Archive Tide Ember Compass Lighthouse Carnival Harvest Monsoon Oracle"
).split()
_FIRST_NAMES = (
    "Ada Bo Chidi Dana Eli Fumiko Greta Hugo Ines Jonas Kiri Lena Mateo Nadia Oskar Priya Quinn Rosa Soren "
    "Tomas Uma Vera Wen Xavier Yara Zane Amira Bruno Celine Dmitri Esme Farid Gianna Hana Ivo Jun Kamal Lucia"
).split()
_LAST_NAMES = (
    "Reyes Lindqvist Okafor Mirza Novak Sato Berg Costa Duval Eriksen Fontaine Garcia Haddad Ito Jensen Kowalski "
    "Larsen Moreau Nakamura Oyelaran Petrov Quispe Rossi Silva Tanaka Ueda Varga Weber Xu Yilmaz Zielinski"
).split()


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One record ready to send: topic, key (user id), JSON value bytes, and the event id inside it."""

    topic: str
    key: str
    value: bytes
    event_id: str


@dataclass(frozen=True, slots=True)
class CatalogSpec:
    name: str  # ml-100k | synthetic-100k
    items: tuple[CatalogItem, ...]
    source: str  # "movielens" (the real ML-100K items) or "synthetic"

    @property
    def size(self) -> int:
        return len(self.items)


def zipf_weights(n: int, exponent: float) -> npt.NDArray[np.float64]:
    """Probabilities proportional to 1 / rank**exponent for ranks 1..n (sums to 1)."""
    if n <= 0:
        raise ValueError("n must be positive")
    weights: npt.NDArray[np.float64] = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** exponent
    return weights / float(weights.sum())


def synthetic_catalog(n_items: int, seed: int = 0) -> tuple[CatalogItem, ...]:
    """`n_items` plausible items `syn-000000`...: 1-3 genres each (skewed genre popularity), creators with a
    Zipf-like number of titles each, two- to four-word titles from fixed word lists, seeded runtimes and years.
    The same (n_items, seed) always gives the same catalog."""
    rng = np.random.default_rng([seed, n_items, 1])
    genre_probs = zipf_weights(len(GENRES), 0.8)
    n_creators = max(4, n_items // 6)
    creator_probs = zipf_weights(n_creators, 0.9)
    creator_of = rng.choice(n_creators, size=n_items, p=creator_probs)
    n_genres = rng.choice(3, size=n_items, p=(0.45, 0.4, 0.15)) + 1
    years = rng.integers(1930, 2026, size=n_items)
    shapes = rng.integers(0, 4, size=n_items)
    words = rng.integers(0, 1 << 30, size=(n_items, 4))
    # Genres without replacement, weighted, for all items at once (Gumbel top-k: sort log p + Gumbel noise).
    keys = np.log(genre_probs)[None, :] + rng.gumbel(size=(n_items, len(GENRES)))
    genre_ranks = np.argsort(-keys, axis=1)[:, :3].tolist()
    items: list[CatalogItem] = []
    for i in range(n_items):
        item_id = f"syn-{i:06d}"
        items.append(
            CatalogItem(
                item_id=item_id,
                title=_title(int(shapes[i]), words[i]),
                genres=tuple(GENRES[g] for g in genre_ranks[i][: int(n_genres[i])]),
                creators=(creator_name(int(creator_of[i])),),
                duration_seconds=synthetic_duration_seconds(item_id),
                year=int(years[i]),
            )
        )
    return tuple(items)


def _title(shape: int, words: npt.NDArray[np.int64]) -> str:
    adjective = _ADJECTIVES[int(words[0]) % len(_ADJECTIVES)]
    noun = _NOUNS[int(words[1]) % len(_NOUNS)]
    other = _NOUNS[int(words[2]) % len(_NOUNS)]
    if shape == 0:
        return f"The {adjective} {noun}"
    if shape == 1:
        return f"{adjective} {noun}"
    if shape == 2:
        return f"{noun} of the {adjective} {other}"
    return f"{adjective} {noun} {int(words[3]) % 9 + 2}"  # a sequel


def creator_name(index: int) -> str:
    """A readable, unique creator name for any index (a roman-ish suffix beyond the name combinations)."""
    first = _FIRST_NAMES[index % len(_FIRST_NAMES)]
    last = _LAST_NAMES[(index // len(_FIRST_NAMES)) % len(_LAST_NAMES)]
    generation = index // (len(_FIRST_NAMES) * len(_LAST_NAMES))
    return f"{first} {last}" if generation == 0 else f"{first} {last} {generation + 1}"


def movielens_cached(cache_dir: Path) -> bool:
    """Whether `streamrec dataset fetch` has put ML-100K into `cache_dir` (the RecBole folder or the zip)."""
    return (cache_dir / "ml-100k").is_dir() or (cache_dir / "ml-100k.zip").is_file()


def movielens_catalog(cache_dir: Path) -> tuple[CatalogItem, ...] | None:
    """The real ML-100K items if the dataset is already in `cache_dir` (this never downloads), else None."""
    from streamrec.streams.tools.data import DatasetError, load_movielens_100k

    if not movielens_cached(cache_dir):
        return None
    try:
        return load_movielens_100k(cache_dir, show_progress=False).items
    except (DatasetError, OSError):
        return None


def catalog_for(name: str, cache_dir: Path, seed: int = 0) -> CatalogSpec:
    """`ml-100k`: the real MovieLens 100K catalog when it is in the cache (`streamrec dataset fetch`), else a
    synthetic catalog of that size; `synthetic-100k`: the synthetic 100,000 items."""
    if name == ML_100K:
        real = movielens_catalog(cache_dir)
        if real is not None:
            return CatalogSpec(name, real, "movielens")
        return CatalogSpec(name, synthetic_catalog(ML_100K_ITEMS, seed), "synthetic")
    if name == SYNTHETIC_100K:
        return CatalogSpec(name, synthetic_catalog(SYNTHETIC_100K_ITEMS, seed), "synthetic")
    raise ValueError(f"unknown catalog {name!r}: choose one of {', '.join(CATALOG_NAMES)}")


def catalog_records(items: Sequence[CatalogItem]) -> list[tuple[str, bytes]]:
    """(key = item id, JSON value) for the `catalog` topic."""
    return [(item.item_id, orjson.dumps(event_to_dict(item))) for item in items]


def user_key(index: int) -> str:
    return f"u{index:07d}"


class EventGenerator:
    """Seeded ratings, plays and searches over a catalog, keyed by user id, as the JSON contracts of
    `models.events`. Items are drawn by Zipf-like popularity over a seeded permutation of the catalog (popular
    items are not simply the first ids), users by Zipf-like activity. `events(n)` gives the same n records for
    the same arguments."""

    def __init__(
        self,
        items: Sequence[CatalogItem],
        *,
        n_users: int,
        seed: int = 0,
        item_exponent: float = 1.0,
        user_exponent: float = 0.8,
        mix: tuple[float, float, float] = DEFAULT_MIX,
        id_prefix: str = "bench",
    ) -> None:
        if not items:
            raise ValueError("the catalog is empty")
        if n_users <= 0:
            raise ValueError("n_users must be positive")
        if len(mix) != 3 or min(mix) < 0 or not np.isclose(sum(mix), 1.0):
            raise ValueError("mix must be three non-negative shares of ratings, plays, searches summing to 1")
        self.items = tuple(items)
        self.n_users = n_users
        self.seed = seed
        self.mix = mix
        self.id_prefix = id_prefix
        rng = np.random.default_rng([seed, len(items), 2])
        # Popularity by rank over a seeded permutation: item_popularity[row] is the row's probability.
        self.item_order = rng.permutation(len(items))
        self.item_popularity = np.empty(len(items), dtype=np.float64)
        self.item_popularity[self.item_order] = zipf_weights(len(items), item_exponent)
        self.user_order = rng.permutation(n_users)
        self.user_activity = np.empty(n_users, dtype=np.float64)
        self.user_activity[self.user_order] = zipf_weights(n_users, user_exponent)
        self._durations = np.array([max(item.duration_seconds, 60) for item in items], dtype=np.float64)

    def events(self, n: int, *, start: int = 0, base_ts_ms: int | None = None) -> list[EventRecord]:
        """Events number start..start+n-1, users drawn by activity (a stream as many users produce it)."""
        rng = np.random.default_rng([self.seed, start, n, 3])
        users = rng.choice(self.n_users, size=n, p=self.user_activity)
        return self._build(rng, users, start, base_ts_ms)

    def events_per_user(
        self, n_users: int, per_user: int, *, start: int = 0, base_ts_ms: int | None = None
    ) -> list[EventRecord]:
        """Exactly `per_user` events for each of users 0..n_users-1, in rounds (every user once, then again)."""
        if n_users > self.n_users:
            raise ValueError(f"the generator has {self.n_users} users, not {n_users}")
        rng = np.random.default_rng([self.seed, start, n_users, per_user, 4])
        users = np.concatenate([rng.permutation(n_users) for _ in range(per_user)]) if per_user else np.zeros(0)
        return self._build(rng, users.astype(np.int64), start, base_ts_ms)

    def _build(
        self,
        rng: np.random.Generator,
        users: npt.NDArray[np.int64],
        start: int,
        base_ts_ms: int | None,
    ) -> list[EventRecord]:
        n = int(users.shape[0])
        kinds = rng.choice(3, size=n, p=self.mix)
        rows = rng.choice(len(self.items), size=n, p=self.item_popularity)
        stars = rng.choice(5, size=n, p=STAR_PROBS) + 1
        watched = rng.beta(2.0, 1.2, size=n)
        clicks = rng.random(n) < 0.5
        word_pick = rng.integers(0, 1 << 30, size=n)
        records: list[EventRecord] = []
        for i in range(n):
            user = user_key(int(users[i]))
            event_id = f"{self.id_prefix}-{self.seed}-{start + i}"
            row = int(rows[i])
            payload: dict[str, object] = {"event_id": event_id, "user_id": user}
            if base_ts_ms is not None:
                payload["ts"] = base_ts_ms + i
            kind = int(kinds[i])
            item = self.items[row]
            if kind == 0:
                topic = RATINGS
                payload["item_id"] = item.item_id
                payload["rating"] = float(stars[i])
            elif kind == 1:
                topic = PLAYS
                share = float(watched[i])
                payload["item_id"] = item.item_id
                payload["watched_seconds"] = round(share * float(self._durations[row]), 1)
                payload["completed"] = share >= 0.9
            else:
                topic = SEARCHES
                payload["query"] = _query(item, int(word_pick[i]))
                if clicks[i]:
                    payload["clicked_item_id"] = item.item_id
            records.append(EventRecord(topic, user, orjson.dumps(payload), event_id))
        return records


def _query(item: CatalogItem, pick: int) -> str:
    """What someone looking for `item` types: one or two words of its title, or one of its genres."""
    words = [w for w in item.title.split() if len(w) > 2 and w.lower() not in ("the", "and", "of")]
    if words and pick % 4:
        first = words[pick % len(words)]
        if pick % 3 == 0 and len(words) > 1:
            return f"{first} {words[(pick + 1) % len(words)]}".lower()
        return first.lower()
    if item.genres:
        return item.genres[pick % len(item.genres)].lower()
    return item.title[:50].lower()
