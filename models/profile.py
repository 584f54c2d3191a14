"""A viewer's state: embedding, bounded recent history, genre affinities, recent searches, recent event ids.

Stored in a changelogged RocksDB table, so it has a compact, versioned binary form (`to_bytes`/`from_bytes`).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import orjson

_MAGIC = b"SRP1"
_HEADER = struct.Struct("<4sHII")  # magic, embedding dims, watched count, json bytes


@dataclass(slots=True)
class HistoryEntry:
    item_id: str
    weight: float  # signed preference: centred rating or engagement
    ts: int


@dataclass(slots=True)
class SearchEntry:
    query: str
    ts: int


@dataclass(slots=True)
class UserProfile:
    user_id: str
    embedding: npt.NDArray[np.float32]
    history: list[HistoryEntry] = field(default_factory=list)  # oldest first, bounded
    watched: set[int] = field(default_factory=set)  # hash64 of every item watched or rated (for exclusion)
    genre_weights: dict[str, float] = field(default_factory=dict)  # genre display name -> weight
    searches: list[SearchEntry] = field(default_factory=list)  # oldest first, bounded
    event_ids: list[int] = field(default_factory=list)  # hash64 of recent event ids (dedupe), bounded
    n_events: int = 0
    last_ts: int = 0
    rating_sum: float = 0.0
    rating_count: int = 0

    @classmethod
    def new(cls, user_id: str, dim: int) -> UserProfile:
        return cls(user_id=user_id, embedding=np.zeros(dim, dtype=np.float32))

    @property
    def rating_mean(self) -> float:
        """The user's mean rating, shrunk towards 3.5 while they have rated little."""
        return (self.rating_sum + 3.5 * 3) / (self.rating_count + 3)

    def to_bytes(self) -> bytes:
        body = orjson.dumps(
            {
                "u": self.user_id,
                "h": [[h.item_id, round(h.weight, 3), h.ts] for h in self.history],
                "g": {k: round(v, 3) for k, v in self.genre_weights.items()},
                "s": [[s.query, s.ts] for s in self.searches],
                "e": self.event_ids,
                "n": [self.n_events, self.last_ts, round(self.rating_sum, 3), self.rating_count],
            }
        )
        watched = np.fromiter(self.watched, dtype=np.int64, count=len(self.watched))
        header = _HEADER.pack(_MAGIC, self.embedding.shape[0], watched.shape[0], len(body))
        return header + self.embedding.astype(np.float16).tobytes() + watched.tobytes() + body

    @classmethod
    def from_bytes(cls, raw: bytes) -> UserProfile:
        magic, dims, n_watched, n_body = _HEADER.unpack_from(raw)
        if magic != _MAGIC:
            raise ValueError(f"not a streamrec profile (magic {magic!r})")
        pos = _HEADER.size
        embedding = np.frombuffer(raw, dtype=np.float16, count=dims, offset=pos).astype(np.float32)
        pos += 2 * dims
        watched = np.frombuffer(raw, dtype=np.int64, count=n_watched, offset=pos)
        pos += 8 * n_watched
        body = orjson.loads(raw[pos : pos + n_body])
        n_events, last_ts, rating_sum, rating_count = body["n"]
        return cls(
            user_id=body["u"],
            embedding=embedding,
            history=[HistoryEntry(i, w, t) for i, w, t in body["h"]],
            watched=set(watched.tolist()),
            genre_weights=body["g"],
            searches=[SearchEntry(q, t) for q, t in body["s"]],
            event_ids=body["e"],
            n_events=n_events,
            last_ts=last_ts,
            rating_sum=rating_sum,
            rating_count=rating_count,
        )


class EncodedProfiles(MutableMapping[str, UserProfile]):
    """Profiles kept encoded in any bytes mapping (the worker's RocksDB table, or a dict in the evaluator),
    so every path sees exactly what a round trip through the changelog gives.
    """

    def __init__(self, backing: MutableMapping[bytes, bytes] | None = None) -> None:
        self.backing: MutableMapping[bytes, bytes] = backing if backing is not None else {}

    def __getitem__(self, user_id: str) -> UserProfile:
        raw = self.get_raw(user_id)
        if raw is None:
            raise KeyError(user_id)
        return UserProfile.from_bytes(raw)

    def get_raw(self, user_id: str) -> bytes | None:
        raw = self.backing.get(user_id.encode())  # .get: a Faust table's [] would apply its default
        return None if raw is None else bytes(raw)

    def __contains__(self, user_id: object) -> bool:
        return isinstance(user_id, str) and self.backing.get(user_id.encode()) is not None

    def __setitem__(self, user_id: str, profile: UserProfile) -> None:
        self.backing[user_id.encode()] = profile.to_bytes()

    def __delitem__(self, user_id: str) -> None:
        del self.backing[user_id.encode()]

    def __iter__(self) -> Iterator[str]:
        return (bytes(key).decode() for key in self.backing)

    def __len__(self) -> int:
        return len(self.backing)
