"""An in-memory dataset: the catalog plus time-ordered interactions and searches. Loading lives in streams.data."""

from __future__ import annotations

from dataclasses import dataclass, field

from streamrec.models.events import CatalogItem, Play, Rating, Search


@dataclass(frozen=True, slots=True)
class Dataset:
    name: str
    items: tuple[CatalogItem, ...]
    ratings: tuple[Rating, ...]  # sorted by (ts, original order); event ids are stable across loads
    searches: tuple[Search, ...] = field(default=())  # real user-typed queries (MovieLens tags), if any
    plays: tuple[Play, ...] = field(default=())  # recorded plays (KuaiRand), by (ts, source order); none: simulated

    @property
    def n_users(self) -> int:
        return len({r.user_id for r in self.ratings} | {p.user_id for p in self.plays})
