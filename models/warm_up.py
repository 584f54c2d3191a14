"""The compiled kernels made ready before a worker joins its consumer group.

numba compiles a kernel at its first call, or loads it from its cache on disk. On a fresh install that first call
would come in the worker's first batch, and compiling takes tens of seconds that block the event loop: long enough
to miss the group's session timeout and lose the partitions just assigned. `compile_kernels` makes those first calls
on a tiny catalog instead, through both ranking paths, before the worker starts.
"""

from __future__ import annotations

from dataclasses import replace

from streamrec.models.events import CatalogItem, Play, Rating, Search, UserEvent
from streamrec.models.params import StreamParams
from streamrec.models.profile import EncodedProfiles, ProfileOverlay
from streamrec.models.recommender import StreamRecommender

_ITEMS = tuple(
    CatalogItem(f"warm-up {k}", f"warm up title {k}", ("Drama", "Comedy", "Crime")[k % 3 : k % 3 + 2], (f"c{k % 7}",))
    for k in range(300)  # more items than a list's candidates, so every step of the large-catalog path runs
)
_VIEWERS = 40


def _events() -> list[UserEvent]:
    """Each viewer plays and rates 50 items: enough pairs that the sparse co-occurrence tables grow and move."""
    events: list[UserEvent] = []
    for t in range(50 * _VIEWERS):
        user, item, ts = f"viewer {t % _VIEWERS}", _ITEMS[(t * 37 + t // _VIEWERS) % len(_ITEMS)].item_id, 60_000 * t
        events.append(Play(f"p{t}", user, item, 30.0, ts, t % 3 == 0))
        events.append(Rating(f"r{t}", user, item, 0.5 + t % 10 / 2, ts))
    events.append(Search("s", "viewer 0", "warm up title", 60_000 * 50 * _VIEWERS))
    return events


def compile_kernels(params: StreamParams | None = None) -> None:
    """Learn and rank a few events on the exact path and on the large-catalog path, as a worker's batch does."""
    base = params or StreamParams()
    for exact_max_items in (base.exact_max_items, 0):
        profiles = ProfileOverlay(EncodedProfiles())  # as the worker learns a batch: live, written once at its end
        system = StreamRecommender(replace(base, exact_max_items=exact_max_items), profiles=profiles)
        system.add_items([(item, 0) for item in _ITEMS])
        system.prepare_ranking()
        with system.learning_batch():
            for event in _events():
                system.learn_one(event)
        system.rank_lists([*(system.profile(f"viewer {u}") for u in range(_VIEWERS)), None]).json_items()
        profiles.flush()
