"""KuaiRand-Pure: the mapping on hand-made files (plays, likes and hates, impressions, durations, catalog items,
event order and ids), the checksum guard, and the real files' counts when the shared copy is on this machine."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from streamrec.models.events import CatalogItem, Play, Rating
from streamrec.streams.tools.data import DatasetError
from streamrec.streams.tools.data.kuairand import (
    INTERACTIONS,
    VIDEOS,
    KuaiRandCounts,
    default_folder,
    load_kuairand,
    parse_kuairand,
)

INTERACTION_HEADER = (
    "user_id,video_id,date,hourmin,time_ms,is_click,is_like,is_follow,is_comment,is_forward,is_hate,long_view,"
    "play_time_ms,duration_ms,profile_stay_time,comment_stay_time,is_profile_enter,is_rand,tab"
).split(",")
VIDEO_HEADER = (
    "video_id,author_id,video_type,upload_dt,upload_type,visible_status,video_duration,server_width,server_height,"
    "music_id,music_type,tag"
).split(",")


def interaction(
    user: int, video: int, ts: int, click: int, play_ms: int, duration_ms: int, like: int = 0, hate: int = 0
) -> list[str]:
    values = {
        "user_id": user,
        "video_id": video,
        "time_ms": ts,
        "is_click": click,
        "is_like": like,
        "is_hate": hate,
        "play_time_ms": play_ms,
        "duration_ms": duration_ms,
    }
    return [str(values.get(column, 0)) for column in INTERACTION_HEADER]


def video(video_id: int, author: int, duration: str, tag: str) -> list[str]:
    values = {
        "video_id": str(video_id),
        "author_id": str(author),
        "video_type": "NORMAL",
        "upload_dt": "2022-04-10",
        "video_duration": duration,
        "tag": tag,
    }
    return [values.get(column, "0") for column in VIDEO_HEADER]


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


@pytest.fixture
def small(tmp_path: Path) -> tuple[Path, Path]:
    interactions, videos = tmp_path / INTERACTIONS, tmp_path / VIDEOS
    write_csv(
        videos,
        VIDEO_HEADER,
        [
            video(2, 900, "20000.0", "20,43"),  # out of id order on purpose
            video(1, 901, "10000.0", "39"),
            video(3, 902, "", ""),  # no duration in videos.csv: taken from an interaction row
            video(4, 903, "", "7"),  # no duration anywhere
        ],
    )
    write_csv(
        interactions,
        INTERACTION_HEADER,
        [
            interaction(7, 1, 1_000, 1, 9_500, 10_000, like=1),  # row 1: play (completed) + like
            interaction(8, 2, 1_000, 0, 1_500, 20_000),  # row 2: shown, swiped after 1.5 s
            interaction(7, 2, 3_000, 1, 4_000, 20_000, hate=1),  # row 3: play + hate
            interaction(8, 3, 2_000, 1, 3_000, 0),  # row 4: earlier than row 3; duration from row 6
            interaction(9, 1, 4_000, 0, 2_000, 10_000, like=1),  # row 5: liked without a click: watched
            interaction(9, 3, 5_000, 0, 0, 30_000, hate=1),  # row 6: hated without watching: impression
            interaction(8, 1, 6_000, 1, 1_000, 10_000, like=1, hate=1),  # row 7: contradictory: play only
            interaction(9, 4, 7_000, 1, 5_000, 0),  # row 8: duration unknown
        ],
    )
    return interactions, videos


def test_videos_become_catalog_items(small: tuple[Path, Path]) -> None:
    data = parse_kuairand(*small)
    assert data.items == (
        CatalogItem("1", "video 1", ("tag 39",), ("901",), 10, 2022),
        CatalogItem("2", "video 2", ("tag 20", "tag 43"), ("900",), 20, 2022),
        CatalogItem("3", "video 3", (), ("902",), 30, 2022),
        CatalogItem("4", "video 4", ("tag 7",), ("903",), 0, 2022),
    )


def test_watched_rows_become_plays_and_feedback_ratings_in_time_order(small: tuple[Path, Path]) -> None:
    data = parse_kuairand(*small)
    assert data.events() == [
        Play("kr:1", "7", "1", 9.5, 1_000, True),
        Rating("kr:1:like", "7", "1", 5.0, 1_000),
        Play("kr:4", "8", "3", 3.0, 2_000, False),  # its duration (30 s) from row 6
        Play("kr:3", "7", "2", 4.0, 3_000, False),
        Rating("kr:3:hate", "7", "2", 0.5, 3_000),
        Play("kr:5", "9", "1", 2.0, 4_000, False),
        Rating("kr:5:like", "9", "1", 5.0, 4_000),
        Play("kr:7", "8", "1", 1.0, 6_000, False),
        Play("kr:8", "9", "4", 5.0, 7_000, None),  # no duration: completion unknown
    ]
    assert data.counts() == KuaiRandCounts(
        items=4,
        items_played=4,
        viewers=3,
        users=3,
        plays=6,
        likes=2,
        hates=1,
        impressions=2,
        hated_impressions=1,
    )


def test_rows_not_watched_are_impressions(small: tuple[Path, Path]) -> None:
    impressions = parse_kuairand(*small).impressions
    assert len(impressions) == 2
    assert impressions.user_ids.tolist() == [8, 9]
    assert impressions.item_ids.tolist() == [2, 3]
    assert impressions.ts.tolist() == [1_000, 5_000]
    assert impressions.played_ms.tolist() == [1_500, 0]
    assert impressions.hated.tolist() == [False, True]
    assert impressions.ts.dtype == np.int64


def test_unknown_videos_and_bad_rows_are_errors(small: tuple[Path, Path], tmp_path: Path) -> None:
    interactions, videos = small
    rows = list(csv.reader(interactions.open()))
    write_csv(interactions, rows[0], [*rows[1:], interaction(7, 99, 9_000, 1, 1, 1)])
    with pytest.raises(DatasetError, match="missing from"):
        parse_kuairand(interactions, videos)
    write_csv(interactions, rows[0], [*rows[1:], interaction(7, 1, 9_000, 2, 1, 1)])
    with pytest.raises(DatasetError, match="row 9"):
        parse_kuairand(interactions, videos)
    write_csv(interactions, ["user_id", "video_id"], [["1", "1"]])
    with pytest.raises(DatasetError, match="lacks column"):
        parse_kuairand(interactions, videos)


def test_files_must_be_the_published_ones(small: tuple[Path, Path], tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="expected the KuaiRand-Pure files"):
        load_kuairand(tmp_path)  # small files: their sha256 differ
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="missing dataset file"):
        load_kuairand(empty)


SHARED = default_folder()


@pytest.mark.skipif(not (SHARED / INTERACTIONS).is_file(), reason=f"no KuaiRand-Pure copy at {SHARED}")
def test_the_shared_copy_loads_with_the_published_counts(tmp_path: Path) -> None:
    data = load_kuairand()
    counts = data.counts()
    assert counts.plays + counts.impressions == 228_329  # every row: watched or only shown
    assert counts.viewers == 25_156 and counts.items == 7_583
    assert counts == KuaiRandCounts(
        items=7_583,
        items_played=5_095,
        viewers=25_156,
        users=21_839,
        plays=101_603,
        likes=3_912,
        hates=80,
        impressions=126_726,
        hated_impressions=107,
    )
    events = data.events()
    assert [e.ts for e in events] == sorted(e.ts for e in events)
    assert len({e.event_id for e in events}) == len(events)
    # one changed byte in a copy is caught
    copy = tmp_path / "copy"
    shutil.copytree(SHARED, copy)
    copy.chmod(0o755)  # the shared copy is read-only, and so are its copies
    (copy / VIDEOS).chmod(0o644)
    with (copy / VIDEOS).open("ab") as handle:
        handle.write(b"\n")
    with pytest.raises(DatasetError, match="sha256"):
        load_kuairand(copy)


def test_counts_read_as_one_line() -> None:
    counts = KuaiRandCounts(7_583, 5_095, 25_156, 21_839, 101_603, 3_912, 80, 126_726, 107)
    assert counts.describe() == (
        "7,583 videos (5,095 played), 25,156 viewers (21,839 with plays), 101,603 plays, 3,912 likes, 80 hates, "
        "126,726 impressions (107 hated)"
    )
