from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streamrec.models.events import Rating, Search
from streamrec.streams.cli.dataset import dataset_app
from streamrec.streams.tools.data import DatasetError, load_dataset, load_movielens_latest


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def write_latest(folder: Path, *, tags: bool = True) -> Path:
    folder.mkdir(parents=True)
    write_csv(
        folder / "movies.csv",
        ["movieId", "title", "genres"],
        [
            ["1", "Toy Story (1995)", "Adventure|Animation|Children|Comedy|Fantasy"],
            ["11", "American President, The (1995)", "Comedy|Drama|Romance"],
            ["30", "Shanghai Triad (Yao a yao yao dao waipo qiao) (1995)", "Crime|Drama"],
            ["99", "Hellboy: The Seeds of Creation (2004)", "(no genres listed)"],
        ],
    )
    write_csv(
        folder / "ratings.csv",
        ["userId", "movieId", "rating", "timestamp"],
        [["1", "11", "4.0", "964982703"], ["1", "1", "4.5", "964981247"], ["2", "30", "0.5", "964982703"]],
    )
    if tags:
        write_csv(
            folder / "tags.csv",
            ["userId", "movieId", "tag", "timestamp"],
            [
                ["2", "1", "pixar, funny", "1445714994"],
                ["2", "11", '  "political"  drama ', "1445714990"],
                ["3", "30", "   ", "1445714999"],
            ],
        )
    return folder


def test_latest_folder_is_parsed(tmp_path: Path) -> None:
    dataset = load_movielens_latest(write_latest(tmp_path / "ml-latest-small"))

    assert dataset.name == "ml-latest-small"
    titles = {item.item_id: (item.title, item.year, item.genres) for item in dataset.items}
    assert titles == {
        "1": ("Toy Story", 1995, ("Adventure", "Animation", "Children", "Comedy", "Fantasy")),
        "11": ("The American President", 1995, ("Comedy", "Drama", "Romance")),
        "30": ("Shanghai Triad (Yao a yao yao dao waipo qiao)", 1995, ("Crime", "Drama")),
        "99": ("Hellboy: The Seeds of Creation", 2004, ()),
    }
    assert all(item.duration_seconds > 0 and item.creators == () for item in dataset.items)
    assert dataset.ratings == (
        Rating("ml-latest-small:r:2", "1", "1", 4.5, 964_981_247_000),
        Rating("ml-latest-small:r:1", "1", "11", 4.0, 964_982_703_000),
        Rating("ml-latest-small:r:3", "2", "30", 0.5, 964_982_703_000),
    )
    # Tags are user-typed queries on the tagged movie; blank tags are no query; sorted by time.
    assert dataset.searches == (
        Search("ml-latest-small:t:2", "2", '"political" drama', 1_445_714_990_000, "11"),
        Search("ml-latest-small:t:1", "2", "pixar, funny", 1_445_714_994_000, "1"),
    )


def test_tags_are_optional(tmp_path: Path) -> None:
    dataset = load_movielens_latest(write_latest(tmp_path / "small", tags=False))
    assert dataset.searches == () and len(dataset.ratings) == 3


def test_missing_ratings_file_is_a_clear_error(tmp_path: Path) -> None:
    folder = write_latest(tmp_path / "small")
    (folder / "ratings.csv").unlink()
    with pytest.raises(DatasetError, match=r"no ratings\.csv in .*MovieLens 'latest' folder"):
        load_movielens_latest(folder)


def test_out_of_range_rating_names_file_and_row(tmp_path: Path) -> None:
    folder = write_latest(tmp_path / "small")
    write_csv(folder / "ratings.csv", ["userId", "movieId", "rating", "timestamp"], [["1", "1", "7", "1"]])
    with pytest.raises(DatasetError, match=r"ratings\.csv, row 1: invalid rating"):
        load_movielens_latest(folder)


def test_load_dataset_prefers_a_path_and_rejects_unknown_names(tmp_path: Path) -> None:
    folder = write_latest(tmp_path / "small")
    assert load_dataset(name="ml-100k", path=folder, cache_dir=tmp_path / "cache").name == "small"
    with pytest.raises(DatasetError, match="unknown dataset 'ml-1m'"):
        load_dataset(name="ml-1m", cache_dir=tmp_path / "cache")


def test_dataset_info_command_shows_counts_and_histogram(tmp_path: Path) -> None:
    folder = write_latest(tmp_path / "small")
    result = CliRunner().invoke(dataset_app, ["info", "--path", str(folder)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    lines = {line.strip("│ ").split("│")[0].strip(): line for line in result.output.splitlines()}
    assert "searches (tags)" in lines and lines["searches (tags)"].split("│")[2].strip() == "2"
    assert lines["items"].split("│")[2].strip() == "4"
    assert "2000-07-30" in result.output and "2015-10-24" in result.output  # the time span
    assert "Comedy" in result.output and "0.5" in result.output


def test_dataset_fetch_rejects_unknown_names() -> None:
    result = CliRunner().invoke(dataset_app, ["fetch", "--name", "ml-1m"])
    assert result.exit_code == 2
    assert "unknown dataset 'ml-1m'" in result.output
