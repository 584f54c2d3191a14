from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from streamrec.models.dataset import Dataset
from streamrec.models.events import CatalogItem, Rating
from streamrec.models.simulate import synthetic_duration_seconds
from streamrec.streams.tools.data import DatasetError, fetch_movielens_100k, load_movielens_100k, movielens
from streamrec.streams.tools.data.movielens import parse_grouplens_zip, parse_recbole_dir, ratings_digest

GENRES = ["unknown", "Action", "Adventure", "Comedy", "Drama"]
U_DATA = "196\t242\t3\t881250949\n186\t302\t5\t881250949\n22\t242\t1\t878887116\n\n196\t302\t4\t891717742\n"


def _u_item_line(item_id: str, title: str, date: str, genres: set[str]) -> str:
    flags = "|".join("1" if g in genres else "0" for g in GENRES)
    return f"{item_id}|{title}|{date}||http://us.imdb.com/x|{flags}\n"


def write_grouplens_zip(path: Path, *, data: str = U_DATA, with_genres: bool = True) -> Path:
    u_item = (
        _u_item_line("242", "Usual Suspects, The (1995)", "01-Jan-1995", {"Drama", "Action"})
        + _u_item_line("302", "Cité des enfants perdus, La (1995)", "01-Jan-1995", {"Adventure"})
        + _u_item_line("267", "unknown", "", {"unknown"})
    )
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("ml-100k/u.data", data)
        archive.writestr("ml-100k/u.item", u_item.encode("latin-1"))
        if with_genres:
            archive.writestr("ml-100k/u.genre", "".join(f"{g}|{i}\n" for i, g in enumerate(GENRES)) + "\n")
    return path


def test_grouplens_zip_is_parsed_into_a_dataset(tmp_path: Path) -> None:
    dataset = parse_grouplens_zip(write_grouplens_zip(tmp_path / "ml-100k.zip"))

    assert dataset.name == "ml-100k"
    assert dataset.items == (
        CatalogItem("242", "The Usual Suspects", ("Action", "Drama"), (), synthetic_duration_seconds("242"), 1995),
        CatalogItem("302", "La Cité des enfants perdus", ("Adventure",), (), synthetic_duration_seconds("302"), 1995),
        CatalogItem("267", "unknown", (), (), synthetic_duration_seconds("267"), None),
    )
    # Sorted by (ts, row); the blank line is not a row; ts in milliseconds; ids name the row.
    assert dataset.ratings == (
        Rating("ml100k:r:3", "22", "242", 1.0, 878_887_116_000),
        Rating("ml100k:r:1", "196", "242", 3.0, 881_250_949_000),
        Rating("ml100k:r:2", "186", "302", 5.0, 881_250_949_000),
        Rating("ml100k:r:4", "196", "302", 4.0, 891_717_742_000),
    )
    assert dataset.n_users == 3


def test_grouplens_zip_without_genre_file_is_a_clear_error(tmp_path: Path) -> None:
    path = write_grouplens_zip(tmp_path / "ml-100k.zip", with_genres=False)
    with pytest.raises(DatasetError, match=r"has no u\.genre.*streamrec dataset fetch"):
        parse_grouplens_zip(path)


def test_grouplens_zip_with_a_malformed_rating_names_the_row(tmp_path: Path) -> None:
    path = write_grouplens_zip(tmp_path / "ml-100k.zip", data="1\t2\t3\t4\n1\t2\tthree\t5\n")
    with pytest.raises(DatasetError, match="row 2"):
        parse_grouplens_zip(path)


def test_a_truncated_zip_is_a_clear_error(tmp_path: Path) -> None:
    path = write_grouplens_zip(tmp_path / "ml-100k.zip")
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DatasetError, match="cannot read"):
        parse_grouplens_zip(path)


def write_recbole_dir(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ml-100k.inter").write_text(
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
        "196\t1\t3\t881250949\n186\t2\t5\t881250940\n196\t2\t4\t881250949\n"
    )
    (directory / "ml-100k.item").write_text(
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
        "1\tToy Story\t1995\tAnimation Children's Comedy\n"
        "2\tUsual Suspects, The\t1995\tCrime Thriller\n"
        "3\tunkonwn\tunkonwn\tunknown\n",
        encoding="utf-8",
    )
    (directory / "ml-100k.link").write_text("item_id:token\tentity_id:token\n1\tm.toy\n2\tm.usual\n")
    (directory / "ml-100k.kg").write_text(
        "head_id:token\trelation_id:token\ttail_id:token\n"
        "m.toy\tfilm.film.directed_by\tm.lasseter\n"
        "m.toy\tfilm.film.produced_by\tm.producer\n"
        "m.usual\tfilm.film.directed_by\tm.singer\n"
        "m.usual\tfilm.film.directed_by\tm.codirector\n"
        "m.lasseter\tfilm.director.film\tm.toy\n"
    )
    return directory


def test_recbole_files_are_parsed_with_directors_as_creators(tmp_path: Path) -> None:
    dataset = parse_recbole_dir(write_recbole_dir(tmp_path / "ml-100k"))

    assert [(i.item_id, i.title, i.genres, i.creators, i.year) for i in dataset.items] == [
        ("1", "Toy Story", ("Animation", "Children's", "Comedy"), ("fb:m.lasseter",), 1995),
        ("2", "The Usual Suspects", ("Crime", "Thriller"), ("fb:m.singer", "fb:m.codirector"), 1995),
        ("3", "unkonwn", (), (), None),
    ]
    assert [r.event_id for r in dataset.ratings] == ["ml100k:r:2", "ml100k:r:1", "ml100k:r:3"]
    assert dataset.ratings[0] == Rating("ml100k:r:2", "186", "2", 5.0, 881_250_940_000)


def test_recbole_file_without_a_needed_column_is_a_clear_error(tmp_path: Path) -> None:
    directory = write_recbole_dir(tmp_path / "ml-100k")
    (directory / "ml-100k.inter").write_text("user_id:token\titem_id:token\n1\t2\n")
    with pytest.raises(DatasetError, match=r"lacks column\(s\) \['rating', 'timestamp'\]"):
        parse_recbole_dir(directory)


def test_corrupt_cached_file_fails_the_checksum_with_advice(tmp_path: Path) -> None:
    write_recbole_dir(tmp_path / "ml-100k")  # complete but not the real files: every digest differs
    with pytest.raises(DatasetError, match=r"ml-100k\.inter is corrupt.*streamrec dataset fetch --force"):
        load_movielens_100k(tmp_path, show_progress=False)


def test_zip_with_other_ratings_fails_the_content_check(tmp_path: Path) -> None:
    write_grouplens_zip(tmp_path / "ml-100k.zip")
    with pytest.raises(DatasetError, match="does not hold the expected ML-100K ratings"):
        load_movielens_100k(tmp_path, show_progress=False)


def test_offline_fetch_falls_back_to_the_wheel_and_checks_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    requested: list[str] = []

    def fake_pip_download(requirement: str, target_dir: Path, *, show_progress: bool = True) -> Path:
        requested.append(requirement)
        target_dir.mkdir(parents=True, exist_ok=True)
        wheel = target_dir / "recbole-1.2.1-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.writestr("recbole/dataset_example/ml-100k/ml-100k.inter", "not the data")
        return wheel

    monkeypatch.setattr(movielens, "pip_download", fake_pip_download)
    unreachable = "http://127.0.0.1:9/ml-100k.zip"  # the discard port: connection refused at once
    with pytest.raises(DatasetError, match=r"recbole-1\.2\.1-py3-none-any\.whl is corrupt"):
        fetch_movielens_100k(tmp_path, url=unreachable, show_progress=False)
    assert requested == ["recbole==1.2.1"]
    assert not (tmp_path / "ml-100k.zip").exists()  # no half download left behind
    assert not (tmp_path / "ml-100k.zip.part").exists()


def test_real_ml100k(ml100k: Dataset) -> None:
    assert (len(ml100k.ratings), len(ml100k.items), ml100k.n_users) == (100_000, 1_682, 943)
    assert ratings_digest(ml100k.ratings) == movielens.RATINGS_DIGEST
    timestamps = [r.ts for r in ml100k.ratings]
    assert timestamps == sorted(timestamps)
    assert len({r.event_id for r in ml100k.ratings}) == 100_000
    items = {item.item_id: item for item in ml100k.items}
    assert items["12"].title == "The Usual Suspects" and items["12"].year == 1995
    assert items["1"].genres == ("Animation", "Children's", "Comedy")
    assert sum(1 for item in ml100k.items if item.creators) > 1_500
    assert all(c.startswith(("fb:m.", "fb:g.")) for item in ml100k.items for c in item.creators)  # Freebase ids
    assert all(70 * 60 <= item.duration_seconds <= 200 * 60 for item in ml100k.items)


def test_real_ml100k_as_a_grouplens_zip_gives_the_same_ratings_and_items(ml100k_cache: Path, tmp_path: Path) -> None:
    """The GroupLens path, fed the real data rewritten in the GroupLens format, passes the content check and
    gives the same dataset as the RecBole path, creators aside (the GroupLens files have none)."""
    recbole = parse_recbole_dir(ml100k_cache / "ml-100k")
    inter = (ml100k_cache / "ml-100k" / "ml-100k.inter").read_text().splitlines()[1:]
    genre_names = sorted({g for item in recbole.items for g in item.genres})
    u_item = "".join(
        f"{item.item_id}|{item.title} ({item.year})|||url|0|"
        + "|".join("1" if g in item.genres else "0" for g in genre_names)
        + "\n"
        for item in recbole.items
        if item.year
    )
    with zipfile.ZipFile(tmp_path / "ml-100k.zip", "w") as archive:
        archive.writestr("ml-100k/u.data", "\n".join(inter) + "\n")
        archive.writestr("ml-100k/u.item", u_item.encode("latin-1", "replace"))
        archive.writestr("ml-100k/u.genre", "".join(f"{g}|{i}\n" for i, g in enumerate(["unknown", *genre_names])))

    grouplens = load_movielens_100k(tmp_path, show_progress=False)

    assert grouplens.ratings == recbole.ratings
    by_id = {item.item_id: item for item in grouplens.items}
    for item in recbole.items:
        if item.year and item.title.isascii():
            assert by_id[item.item_id].title == item.title
            assert by_id[item.item_id].genres == tuple(g for g in genre_names if g in item.genres)
            assert by_id[item.item_id].year == item.year
