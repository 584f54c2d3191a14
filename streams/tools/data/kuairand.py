"""KuaiRand-Pure, two weeks of real short-video viewing (Gao et al., CIKM 2022), read from a local folder and
mapped onto streamrec's events: videos -> catalog items, watched rows -> plays (real watch time), likes and
hates -> ratings, the rest -> impressions kept apart for exposure metrics. The mapping and its reasons:
docs/evaluation/kuairand-mapping.md. Both files are checked against their published sha256 first.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from streamrec.models.dataset import Dataset
from streamrec.models.events import CatalogItem, Play, Rating
from streamrec.models.simulate import COMPLETED_THRESHOLD
from streamrec.streams.tools.data.errors import DatasetError
from streamrec.streams.tools.data.fetch import verify_sha256
from streamrec.streams.tools.data.rows import csv_rows

__all__ = [
    "NAME",
    "Impressions",
    "KuaiRandCounts",
    "KuaiRandData",
    "default_folder",
    "load_kuairand",
    "parse_kuairand",
]

NAME = "kuairand-pure"
EVENT_PREFIX = "kr"
INTERACTIONS, VIDEOS = "interactions.csv", "videos.csv"
FILES_SHA256 = {  # as published in the folder's README.md
    INTERACTIONS: "0e8208ebc53a4e6b00a3d55f465daa966abf4a03d8f4e1466f31ebf072001d65",
    VIDEOS: "a6f7ee02684c5777422306cdc416e170302288aa89aca9dfea995edbd625bcc2",
}
LIKE_RATING = 5.0
HATE_RATING = 0.5

_INTERACTION_COLUMNS = (
    "user_id",
    "video_id",
    "time_ms",
    "is_click",
    "is_like",
    "is_hate",
    "play_time_ms",
    "duration_ms",
)
_VIDEO_COLUMNS = ("video_id", "author_id", "upload_dt", "video_duration", "tag")

I64 = npt.NDArray[np.int64]


def default_folder() -> Path:
    """Where the shared copy lives: `shared/data/kuairand-pure` beside the project root."""
    project_root = Path(__file__).resolve().parents[3]
    return project_root.parent / "shared" / "data" / NAME


@dataclass(frozen=True, slots=True, eq=False)
class Impressions:
    """Rows shown but not watched (neither clicked nor liked), for exposure metrics; not events. Row i: viewer
    `user_ids[i]` was shown video `item_ids[i]` at `ts[i]` (epoch ms) and let it run `played_ms[i]` (the
    autoplaying feed plays what it shows until a swipe); `hated[i]`: they pressed "hate" on it. Ids are the
    numbers the events carry as strings."""

    user_ids: I64
    item_ids: I64
    ts: I64
    played_ms: I64
    hated: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return int(self.ts.size)


@dataclass(frozen=True, slots=True)
class KuaiRandCounts:
    items: int  # catalog videos
    items_played: int  # videos with at least one play
    viewers: int  # viewers in the log (shown anything)
    users: int  # viewers with at least one play
    plays: int
    likes: int
    hates: int  # hates given as ratings (on watched rows)
    impressions: int
    hated_impressions: int  # hates on rows not watched: kept with the impressions, not events

    def describe(self) -> str:
        return (
            f"{self.items:,} videos ({self.items_played:,} played), {self.viewers:,} viewers ({self.users:,} with "
            f"plays), {self.plays:,} plays, {self.likes:,} likes, {self.hates:,} hates, {self.impressions:,} "
            f"impressions ({self.hated_impressions:,} hated)"
        )


@dataclass(frozen=True, slots=True)
class KuaiRandData:
    items: tuple[CatalogItem, ...]  # every video of videos.csv, by video id
    plays: tuple[Play, ...]  # by (ts, row)
    ratings: tuple[Rating, ...]  # by (ts, row); each has the ts of its row's play
    impressions: Impressions
    name: str = NAME

    def events(self) -> list[Play | Rating]:
        """The time-ordered stream: by ts, plays before ratings at the same ts (so each rating comes after its
        play), then by row."""
        plays: tuple[Play | Rating, ...] = self.plays
        ratings: tuple[Play | Rating, ...] = self.ratings
        return list(heapq.merge(plays, ratings, key=lambda event: event.ts))

    def as_dataset(self) -> Dataset:
        """As a `Dataset`; the impressions stay out (they are not events)."""
        return Dataset(name=self.name, items=self.items, ratings=self.ratings, plays=self.plays)

    def counts(self) -> KuaiRandCounts:
        return KuaiRandCounts(
            items=len(self.items),
            items_played=len({p.item_id for p in self.plays}),
            viewers=len({p.user_id for p in self.plays} | {str(u) for u in np.unique(self.impressions.user_ids)}),
            users=len({p.user_id for p in self.plays}),
            plays=len(self.plays),
            likes=sum(r.rating == LIKE_RATING for r in self.ratings),
            hates=sum(r.rating == HATE_RATING for r in self.ratings),
            impressions=len(self.impressions),
            hated_impressions=int(self.impressions.hated.sum()),
        )


def load_kuairand(folder: Path | None = None) -> KuaiRandData:
    """KuaiRand-Pure from `folder` (default: `default_folder()`), after checking both files' sha256.
    Raises `DatasetError` when a file is missing, differs from the published one, or cannot be parsed."""
    folder = default_folder() if folder is None else Path(folder)
    remedy = f"expected the KuaiRand-Pure files described in {folder / 'README.md'}, unchanged"
    for name, digest in FILES_SHA256.items():
        verify_sha256(folder / name, digest, remedy=remedy)
    return parse_kuairand(folder / INTERACTIONS, folder / VIDEOS)


def parse_kuairand(interactions: Path, videos: Path) -> KuaiRandData:
    """The mapping itself, without checksums (tests feed it small hand-made files)."""
    video_rows = list(csv_rows(videos, _VIDEO_COLUMNS))
    shown_rows = [
        _interaction(row, fields, interactions) for row, fields in csv_rows(interactions, _INTERACTION_COLUMNS)
    ]
    shown_rows.sort(key=lambda r: r.ts)  # stable: the file's order within a millisecond
    # a video's duration: videos.csv, else any interaction row that knows it, else unknown (0)
    row_durations: dict[str, int] = {}
    for r in shown_rows:
        if r.duration_ms > 0:
            row_durations.setdefault(r.video, r.duration_ms)
    items: list[CatalogItem] = []
    durations_ms: dict[str, int] = {}
    for row, fields in video_rows:
        item, duration_ms = _video(row, fields, videos, row_durations)
        items.append(item)
        durations_ms[item.item_id] = duration_ms
    items.sort(key=lambda item: int(item.item_id))
    unknown = {r.video for r in shown_rows} - durations_ms.keys()
    if unknown:
        raise DatasetError(f"{interactions} names videos missing from {videos}: {sorted(unknown)[:5]}")

    plays: list[Play] = []
    ratings: list[Rating] = []
    skipped: list[_Row] = []
    for r in shown_rows:
        if not (r.clicked or r.liked):  # shown and swiped past: exposure, not consumption
            skipped.append(r)
            continue
        duration_ms = r.duration_ms or durations_ms[r.video]
        event_id = f"{EVENT_PREFIX}:{r.number}"
        completed = r.played_ms >= COMPLETED_THRESHOLD * duration_ms if duration_ms > 0 else None
        plays.append(Play(event_id, r.user, r.video, r.played_ms / 1000.0, r.ts, completed))
        if r.liked and r.hated:
            continue  # contradictory feedback on one row: no rating
        if r.liked:
            ratings.append(Rating(f"{event_id}:like", r.user, r.video, LIKE_RATING, r.ts))
        elif r.hated:
            ratings.append(Rating(f"{event_id}:hate", r.user, r.video, HATE_RATING, r.ts))
    return KuaiRandData(
        items=tuple(items), plays=tuple(plays), ratings=tuple(ratings), impressions=_impressions(skipped)
    )


class _Row(NamedTuple):
    """One row of interactions.csv, parsed."""

    number: int  # 1-based data row: the event ids' source
    user: str
    video: str
    ts: int
    clicked: bool
    liked: bool
    hated: bool
    played_ms: int
    duration_ms: int  # 0: unknown


def _interaction(number: int, fields: list[str], source: Path) -> _Row:
    user, video, time_ms, click, like, hate, play_ms, duration_ms = fields
    try:
        row = _Row(
            number, user, video, int(time_ms), _flag(click), _flag(like), _flag(hate), int(play_ms), int(duration_ms)
        )
    except ValueError as exc:
        raise DatasetError(f"{source}, row {number}: cannot parse {fields!r} ({exc})") from exc
    if not (user.isdigit() and video.isdigit() and row.ts >= 0 and row.played_ms >= 0 and row.duration_ms >= 0):
        raise DatasetError(f"{source}, row {number}: invalid interaction {fields!r}")
    return row


def _flag(text: str) -> bool:
    if text not in ("0", "1"):
        raise ValueError(f"{text!r} is not 0 or 1")
    return text == "1"


def _video(row: int, fields: list[str], source: Path, row_durations: dict[str, int]) -> tuple[CatalogItem, int]:
    """A videos.csv row -> (catalog item, duration in ms, 0 if unknown)."""
    video, author, upload_dt, duration_text, tags = (f.strip() for f in fields)
    try:
        duration_ms = round(float(duration_text)) if duration_text else row_durations.get(video, 0)
        year = int(upload_dt[:4]) if upload_dt else None
    except ValueError as exc:
        raise DatasetError(f"{source}, row {row}: cannot parse {fields!r} ({exc})") from exc
    if not video.isdigit() or duration_ms < 0:
        raise DatasetError(f"{source}, row {row}: invalid video {fields!r}")
    genres = tuple(dict.fromkeys(f"tag {t.strip()}" for t in tags.split(",") if t.strip()))
    item = CatalogItem(
        item_id=video,
        title=f"video {video}",  # the data has no titles: a stable name the reasons can show
        genres=genres,
        creators=(author,) if author else (),
        duration_seconds=round(duration_ms / 1000),
        year=year,
    )
    return item, duration_ms


def _impressions(rows: list[_Row]) -> Impressions:
    return Impressions(
        user_ids=np.array([int(r.user) for r in rows], dtype=np.int64),
        item_ids=np.array([int(r.video) for r in rows], dtype=np.int64),
        ts=np.array([r.ts for r in rows], dtype=np.int64),
        played_ms=np.array([r.played_ms for r in rows], dtype=np.int64),
        hated=np.array([r.hated for r in rows], dtype=np.bool_),
    )
