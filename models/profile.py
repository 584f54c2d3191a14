"""A viewer's state: embedding, bounded recent history, genre affinities, recent searches, recent event ids.

Stored in a changelogged RocksDB table, so it has a compact, versioned binary form (`to_bytes`/`from_bytes`).
"""

from __future__ import annotations

import itertools
import struct
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import orjson

_MAGIC = b"SRP1"
_HEADER = struct.Struct("<4sHII")  # magic, embedding dims, watched count, json bytes

# round(x, 3) goes through decimal conversion and is slow; the same few values come back on every event (a
# profile's stored weights are already rounded), so results are memoised. Only floats (an int key would find an
# equal float's entry: a different type), and no zero (0.0 and -0.0 are one key but round to different signs).
_ROUNDED: dict[float, float] = {}
_ROUNDED_MAX = 1 << 16


def _round3(x: float) -> float:
    """Exactly `round(x, 3)`."""
    if type(x) is not float or x == 0.0:
        return round(x, 3)
    rounded = _ROUNDED.get(x)
    if rounded is None:
        if len(_ROUNDED) >= _ROUNDED_MAX:
            _ROUNDED.clear()
        rounded = _ROUNDED[x] = round(x, 3)
    return rounded


def quantized(embedding: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """The embedding as the codec stores it (float16), back in float32."""
    return embedding.astype(np.float16).astype(np.float32)


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
    # Per input partition ("topic:partition"), the offset of the last record applied: a viewer's records on one
    # partition come in offset order, so a record redelivered after a crash is known however far back it is.
    offsets: dict[str, int] = field(default_factory=dict)
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

    def quantize(self) -> None:
        """Round in place exactly as a `to_bytes` -> `from_bytes` round trip would (finite values assumed):
        float16 embedding; history weights, genre weights and the rating sum to 3 decimals."""
        self.embedding = quantized(self.embedding)
        for h in self.history:
            h.weight = _round3(h.weight)
        weights = self.genre_weights
        for name, weight in weights.items():
            weights[name] = _round3(weight)
        self.rating_sum = _round3(self.rating_sum)

    def quantize_latest(self, genres: Iterable[str], *, embedding: bool = True) -> None:
        """`quantize()` for a profile that was quantized before its last consumption: the embedding, the newest
        history entry, the weights of `genres` (the item's) and the rating sum are all that changed.
        `embedding=False`: leave the embedding (its update is queued and quantizes when applied)."""
        if embedding:
            self.embedding = quantized(self.embedding)
        if self.history:
            self.history[-1].weight = _round3(self.history[-1].weight)
        weights = self.genre_weights
        for name in genres:
            if name in weights:
                weights[name] = _round3(weights[name])
        self.rating_sum = _round3(self.rating_sum)

    def to_bytes(self) -> bytes:
        # Tuples encode as the same JSON arrays as lists, and are cheaper to build.
        fields = {
            "u": self.user_id,
            "h": [(h.item_id, _round3(h.weight), h.ts) for h in self.history],
            "g": {k: _round3(v) for k, v in self.genre_weights.items()},
            "s": [(s.query, s.ts) for s in self.searches],
            "e": self.event_ids,
            "n": (self.n_events, self.last_ts, _round3(self.rating_sum), self.rating_count),
        }
        if self.offsets:  # only profiles learnt from Kafka records have them
            fields["o"] = self.offsets
        body = orjson.dumps(fields)
        # Sorted: a set's iteration order depends on how it was built; the bytes must depend only on its contents.
        watched = np.sort(np.fromiter(self.watched, dtype=np.int64, count=len(self.watched)))
        header = _HEADER.pack(_MAGIC, self.embedding.shape[0], watched.shape[0], len(body))
        return b"".join((header, self.embedding.astype(np.float16).tobytes(), watched.tobytes(), body))

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
            history=list(itertools.starmap(HistoryEntry, body["h"])),
            watched=set(watched.tolist()),
            genre_weights=body["g"],
            searches=[SearchEntry(q, t) for q, t in body["s"]],
            event_ids=body["e"],
            n_events=n_events,
            last_ts=last_ts,
            rating_sum=rating_sum,
            rating_count=rating_count,
            offsets=body.get("o", {}),
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
        return isinstance(user_id, str) and self.get_raw(user_id) is not None

    def __setitem__(self, user_id: str, profile: UserProfile) -> None:
        self.backing[user_id.encode()] = profile.to_bytes()

    def __delitem__(self, user_id: str) -> None:
        del self.backing[user_id.encode()]

    def __iter__(self) -> Iterator[str]:
        return (bytes(key).decode() for key in self.backing)

    def __len__(self) -> int:
        return len(self.backing)

    @contextmanager
    def batch(self) -> Iterator[ProfileOverlay]:
        """An overlay for applying many events: flushed (each changed profile written once) on a clean exit,
        dropped if the block raises."""
        overlay = ProfileOverlay(self)
        yield overlay
        overlay.flush()


class DecodedProfiles:
    """Profiles decoded (or encoded) by earlier batches, each with its bytes, the most recently used `capacity` of
    them: a batch that reads the same bytes takes the object instead of decoding them again (a profile costs about
    as much to decode as to learn an event). Bytes that differ (the store changed behind the worker: a rebalance, a
    restore) are decoded afresh. An object a batch changed is only held again with the bytes written for it: the
    batch's owner `discard`s what an unfinished batch read."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._held: OrderedDict[str, tuple[bytes, UserProfile]] = OrderedDict()

    def get(self, user_id: str, raw: bytes) -> UserProfile | None:
        held = self._held.get(user_id)
        if held is None or held[0] != raw:
            return None
        self._held.move_to_end(user_id)
        return held[1]

    def put(self, user_id: str, raw: bytes, profile: UserProfile) -> None:
        if self.capacity <= 0:
            return
        self._held[user_id] = (raw, profile)
        self._held.move_to_end(user_id)
        while len(self._held) > self.capacity:
            self._held.popitem(last=False)

    def discard(self, user_ids: Iterable[str]) -> None:
        for user_id in user_ids:
            self._held.pop(user_id, None)

    def __len__(self) -> int:
        return len(self._held)


class ProfileOverlay(MutableMapping[str, UserProfile]):
    """Profiles of an `EncodedProfiles` as live objects for a batch: each is decoded at most once, and
    `flush` writes each changed one once. With `StreamRecommender.learn_one` (which quantizes what it learns)
    the bytes written, and every read in between, are exactly those of learning event by event through the store.
    """

    def __init__(self, store: EncodedProfiles, decoded: DecodedProfiles | None = None) -> None:
        """`decoded`: profiles decoded by earlier batches, taken instead of decoding the same bytes again."""
        self.store = store
        self.decoded = decoded
        self._live: dict[str, UserProfile | None] = {}  # None: known to be absent
        self._dirty: dict[str, None] = {}  # user ids in first-write order

    def __getitem__(self, user_id: str) -> UserProfile:
        try:
            profile = self._live[user_id]
        except KeyError:
            raw = self.store.get_raw(user_id)
            if raw is None:
                profile = None
            else:
                held = None if self.decoded is None else self.decoded.get(user_id, raw)
                profile = UserProfile.from_bytes(raw) if held is None else held
            self._live[user_id] = profile
        if profile is None:
            raise KeyError(user_id)
        return profile

    @property
    def read(self) -> list[str]:
        """Every user whose profile (or its absence) the overlay holds."""
        return list(self._live)

    def holds(self, user_id: str) -> bool:
        """The user's profile (or its absence) is known to the overlay: reading it touches no store."""
        return user_id in self._live

    def __contains__(self, user_id: object) -> bool:
        if isinstance(user_id, str) and user_id in self._live:
            return self._live[user_id] is not None
        return user_id in self.store

    def __setitem__(self, user_id: str, profile: UserProfile) -> None:
        self._live[user_id] = profile
        self._dirty[user_id] = None

    def __delitem__(self, user_id: str) -> None:
        if user_id not in self:
            raise KeyError(user_id)
        self._live[user_id] = None
        self._dirty[user_id] = None

    def __iter__(self) -> Iterator[str]:
        stored = [user_id for user_id in self.store if self._live.get(user_id, True) is not None]
        added = [user_id for user_id, profile in self._live.items() if profile is not None]
        return iter(dict.fromkeys(stored + added))

    def __len__(self) -> int:
        return sum(1 for _ in self)

    @property
    def dirty(self) -> list[str]:
        """Users written (or deleted) since the last flush, in first-write order."""
        return list(self._dirty)

    def flush(self, around: Callable[[str], AbstractContextManager[object]] | None = None) -> list[str]:
        """Write each changed profile to the store once (in first-write order); returns those user ids.
        Forgets every profile it holds, so the next batch reads the store afresh. `around(user_id)`, if given,
        wraps each write (the worker uses it to aim the write at the user's table partition)."""
        changes = self.take()
        for user_id, profile in changes:
            with around(user_id) if around is not None else nullcontext():
                if profile is not None:
                    self.store[user_id] = profile
                elif user_id in self.store:
                    del self.store[user_id]
        return [user_id for user_id, _ in changes]

    def take(self) -> list[tuple[str, UserProfile | None]]:
        """Each changed profile (None: deleted), in first-write order, for the caller to write; forgets every
        profile it holds, as `flush` does."""
        changes = [(user_id, self._live[user_id]) for user_id in self._dirty]
        self._dirty.clear()
        self._live.clear()
        return changes
