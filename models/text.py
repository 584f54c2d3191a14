"""Tokenizing titles, genres and queries the same way everywhere, and stable hashes for ids."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from functools import lru_cache

_WORD = re.compile(r"[a-z0-9]+")
STOP_WORDS = frozenset(
    "a an and the of in on to for with from by at is it its as or vs de la le el les des du und der die das".split()
)


def normalize(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return folded.lower()


def tokens(text: str) -> list[str]:
    """Lower-cased ASCII word tokens without stop words ("Star Wars (1977)" -> ["star", "wars", "1977"])."""
    return [t for t in _WORD.findall(normalize(text)) if t not in STOP_WORDS]


@lru_cache(maxsize=4096)  # a catalog names few genres, each many times
def genre_key(genre: str) -> str:
    """ "Sci-Fi", "sci fi" and "SciFi" are one genre."""
    return "".join(_WORD.findall(normalize(genre)))


def hash64(text: str) -> int:
    """A stable signed 64-bit hash (Python's hash() is salted per process)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little", signed=True)
