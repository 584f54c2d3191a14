"""MovieLens 100K: fetch into the cache (GroupLens first, then the copy inside the RecBole wheel) and parse. Both
formats give the same ratings and event ids (`ml100k:r:<n>`, n the 1-based row of the ratings file), sorted by
(ts in epoch milliseconds, row). ML-100K has no runtimes: every item gets `models.simulate.synthetic_duration_seconds`.
The data is never committed: it lives in the cache dir only (licence).
"""

from __future__ import annotations

import hashlib
import http.client
import io
import zipfile
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from streamrec.models.dataset import Dataset
from streamrec.models.events import CatalogItem, Rating
from streamrec.models.simulate import synthetic_duration_seconds
from streamrec.streams.tools.data.errors import DatasetError
from streamrec.streams.tools.data.fetch import download_url, pip_download, remove_tree, verify_sha256
from streamrec.streams.tools.data.latest import load_movielens_latest
from streamrec.streams.tools.data.rows import numbered, parse_rating_rows
from streamrec.streams.tools.data.titles import clean_genres, parse_year, restore_article, split_title_year

__all__ = [
    "GROUPLENS_URL",
    "NAME",
    "fetch_movielens_100k",
    "load_movielens_100k",
    "load_movielens_latest",
    "parse_grouplens_zip",
    "parse_recbole_dir",
    "ratings_digest",
]

NAME = "ml-100k"
EVENT_PREFIX = "ml100k"
GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
DOWNLOAD_TIMEOUT_S = 5.0
RECBOLE_REQUIREMENT = "recbole==1.2.1"
RECBOLE_WHEEL_SHA256 = "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407"
RECBOLE_MEMBER_DIR = "recbole/dataset_example/ml-100k/"
RECBOLE_FILES_SHA256 = {
    "ml-100k.inter": "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff",
    "ml-100k.item": "51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532",
    "ml-100k.kg": "200a0636fa07c218119a42e5bac7aa3e26e3665a6f919c1b22909bd412b14779",
    "ml-100k.link": "524dca2c3d62619688ab99b3ec53ea2acb9b64d38eafec3e02bdd0dc6bb7d948",
}
# GroupLens' zip digest cannot be checked from here, so a zip is verified by content instead: its ratings must
# hash (see `ratings_digest`) to the same value as the verified RecBole copy's, which also pins the event ids.
RATINGS_DIGEST = "b1a8d4bb96055367b22110eb92a23e26823a9d6a1e9f09b90a5a9d9107d9cef6"
DIRECTED_BY = "film.film.directed_by"

_ZIP_NAME = "ml-100k.zip"
_RECBOLE_DIR = "ml-100k"
_WHEEL_DIR = "wheels"


def _remedy(cache_dir: Path) -> str:
    cached = f"{cache_dir / _RECBOLE_DIR} and {cache_dir / _ZIP_NAME}"
    return f"run `streamrec dataset fetch --force` (or delete {cached}) to download it again"


# --- fetching -----------------------------------------------------------------------------------------------


def fetch_movielens_100k(
    cache_dir: Path,
    *,
    force: bool = False,
    show_progress: bool = True,
    url: str = GROUPLENS_URL,
    timeout: float = DOWNLOAD_TIMEOUT_S,
) -> Path:
    """Make sure ML-100K is in `cache_dir`; returns what to read: the GroupLens zip or the RecBole folder."""
    cache_dir = Path(cache_dir)
    zip_path, recbole_dir = cache_dir / _ZIP_NAME, cache_dir / _RECBOLE_DIR
    if force:
        for cached in (zip_path, recbole_dir, cache_dir / _WHEEL_DIR):
            remove_tree(cached)
    if _recbole_complete(recbole_dir):
        return recbole_dir
    if zip_path.is_file():
        return zip_path
    try:
        download_url(url, zip_path, timeout=timeout, show_progress=show_progress)
        return zip_path
    except (OSError, http.client.HTTPException):
        pass  # GroupLens unreachable (e.g. only a package index is): use the copy in the RecBole wheel
    _fetch_recbole(cache_dir, show_progress=show_progress)
    return recbole_dir


def _recbole_complete(directory: Path) -> bool:
    return all((directory / name).is_file() for name in RECBOLE_FILES_SHA256)


def _fetch_recbole(cache_dir: Path, *, show_progress: bool) -> None:
    wheel_dir = cache_dir / _WHEEL_DIR
    wheel = pip_download(RECBOLE_REQUIREMENT, wheel_dir, show_progress=show_progress)
    verify_sha256(wheel, RECBOLE_WHEEL_SHA256, remedy="run `streamrec dataset fetch --force` to download it again")
    target = cache_dir / _RECBOLE_DIR
    target.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(wheel) as archive:
            for name in RECBOLE_FILES_SHA256:
                # Extract by name only (never the archive's paths), via .part so a crash leaves no half file.
                partial = target / f"{name}.part"
                partial.write_bytes(archive.read(RECBOLE_MEMBER_DIR + name))
                partial.replace(target / name)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise DatasetError(f"{wheel} does not hold the ML-100K files ({exc}); delete it and fetch again") from exc
    for name, digest in RECBOLE_FILES_SHA256.items():
        verify_sha256(target / name, digest, remedy=_remedy(cache_dir))


# --- loading ------------------------------------------------------------------------------------------------


def load_movielens_100k(cache_dir: Path, *, show_progress: bool = True) -> Dataset:
    """ML-100K from `cache_dir`, fetching it first if needed. Raises `DatasetError` with advice on failure."""
    cache_dir = Path(cache_dir)
    source = fetch_movielens_100k(cache_dir, show_progress=show_progress)
    if source.is_dir():
        for name, digest in RECBOLE_FILES_SHA256.items():
            verify_sha256(source / name, digest, remedy=_remedy(cache_dir))
        return parse_recbole_dir(source)
    dataset = parse_grouplens_zip(source)
    if ratings_digest(dataset.ratings) != RATINGS_DIGEST:
        raise DatasetError(f"{source} does not hold the expected ML-100K ratings; {_remedy(cache_dir)}")
    return dataset


def ratings_digest(ratings: Iterable[Rating]) -> str:
    """sha256 of the ratings' canonical text: equal for equal ratings (and ids), whatever the file format."""
    digest = hashlib.sha256()
    for r in ratings:
        digest.update(f"{r.event_id}\t{r.user_id}\t{r.item_id}\t{r.rating:g}\t{r.ts}\n".encode())
    return digest.hexdigest()


# --- parsing: GroupLens zip ---------------------------------------------------------------------------------


def parse_grouplens_zip(path: Path, *, name: str = NAME, prefix: str = EVENT_PREFIX) -> Dataset:
    """The GroupLens ml-100k.zip (members may sit in a folder): u.data (tab-separated user, item, rating, unix
    seconds), u.item (pipe-separated latin-1: id, "Title (Year)", release date, video date, url, 19 genre flags),
    u.genre (name|flag index). These files have no directors, so the items have no creators."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = {Path(info.filename).name: info.filename for info in archive.infolist()}

            def read(member: str, encoding: str) -> list[str]:
                if member not in members:
                    raise DatasetError(f"{path} has no {member}: not a MovieLens 100K zip; {_redownload(path)}")
                return io.TextIOWrapper(io.BytesIO(archive.read(members[member])), encoding=encoding).readlines()

            data, item_lines, genre_lines = (
                read("u.data", "ascii"),
                read("u.item", "latin-1"),
                read("u.genre", "ascii"),
            )
    except (zipfile.BadZipFile, OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read {path} ({exc}); {_redownload(path)}") from exc
    genre_names = _grouplens_genres(genre_lines, source=f"{path}:u.genre")
    items = tuple(
        _grouplens_item(row, fields, genre_names, source=f"{path}:u.item") for row, fields in numbered(item_lines, "|")
    )
    ratings = parse_rating_rows(numbered(data, "\t"), source=f"{path}:u.data", prefix=prefix)
    return Dataset(name=name, items=items, ratings=ratings)


def _redownload(path: Path) -> str:
    return f"delete {path} and run `streamrec dataset fetch`"


def _grouplens_genres(lines: Iterable[str], *, source: str) -> dict[int, str]:
    names: dict[int, str] = {}
    for row, fields in numbered(lines, "|"):
        if len(fields) != 2 or not fields[1].strip().isdigit():
            raise DatasetError(f"{source}, row {row}: expected 'name|index', got {'|'.join(fields)!r}")
        names[int(fields[1])] = fields[0].strip()
    return names


def _grouplens_item(row: int, fields: list[str], genre_names: dict[int, str], *, source: str) -> CatalogItem:
    if len(fields) < 5 + len(genre_names) or not fields[0].strip():
        raise DatasetError(f"{source}, row {row}: expected id|title|date|video date|url|genre flags")
    item_id = fields[0].strip()
    title, year = split_title_year(fields[1])
    if year is None:  # "01-Jan-1995"
        year = parse_year(fields[2].strip()[-4:])
    flags = fields[5 : 5 + len(genre_names)]
    genres = clean_genres([genre_names[i] for i, flag in enumerate(flags) if flag.strip() == "1"])
    return CatalogItem(
        item_id=item_id,
        title=title or item_id,
        genres=genres,
        duration_seconds=synthetic_duration_seconds(item_id),
        year=year,
    )


# --- parsing: RecBole atomic files --------------------------------------------------------------------------


def _atomic_rows(path: Path, columns: Sequence[str]) -> Iterator[tuple[int, list[str]]]:
    """Rows of a RecBole atomic file (header 'name:type<TAB>...') projected onto `columns`, from 1."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read {path} ({exc})") from exc
    if not lines:
        raise DatasetError(f"{path} is empty")
    header = [field.split(":", 1)[0] for field in lines[0].split("\t")]
    missing = [c for c in columns if c not in header]
    if missing:
        raise DatasetError(f"{path} lacks column(s) {missing} (header: {header})")
    positions = [header.index(c) for c in columns]
    for row, fields in numbered(lines[1:], "\t"):
        if len(fields) < len(header):
            fields += [""] * (len(header) - len(fields))
        yield row, [fields[p] for p in positions]


def parse_recbole_dir(directory: Path, *, name: str = NAME, prefix: str = EVENT_PREFIX) -> Dataset:
    """RecBole's atomic files (`recbole==1.2.1` wheel, recbole/dataset_example/ml-100k/): ml-100k.inter,
    ml-100k.item (titles without the year), plus the Freebase knowledge graph (ml-100k.kg, ml-100k.link) that
    gives each film its directors, which become the items' `creators` ("fb:m.0bln8"; the graph has no names;
    no graph: no creators)."""
    directory = Path(directory)
    directors = _recbole_directors(directory)
    items = tuple(
        _recbole_item(fields, directors)
        for _, fields in _atomic_rows(directory / "ml-100k.item", ("item_id", "movie_title", "release_year", "class"))
    )
    rows = _atomic_rows(directory / "ml-100k.inter", ("user_id", "item_id", "rating", "timestamp"))
    ratings = parse_rating_rows(rows, source=str(directory / "ml-100k.inter"), prefix=prefix)
    return Dataset(name=name, items=items, ratings=ratings)


def _recbole_item(fields: list[str], directors: dict[str, tuple[str, ...]]) -> CatalogItem:
    item_id, raw_title, release_year, genres = (f.strip() for f in fields)
    title, title_year = split_title_year(raw_title)
    return CatalogItem(
        item_id=item_id,
        title=restore_article(title) or item_id,
        genres=clean_genres(genres.split()),
        creators=directors.get(item_id, ()),
        duration_seconds=synthetic_duration_seconds(item_id),
        year=parse_year(release_year) or title_year,
    )


def _recbole_directors(directory: Path) -> dict[str, tuple[str, ...]]:
    """item id -> its directors' Freebase ids ("fb:m.…"), in graph order."""
    link, kg = directory / "ml-100k.link", directory / "ml-100k.kg"
    if not (link.is_file() and kg.is_file()):
        return {}
    items_of_entity: dict[str, list[str]] = defaultdict(list)
    for _, (item_id, entity) in _atomic_rows(link, ("item_id", "entity_id")):
        items_of_entity[entity.strip()].append(item_id.strip())
    directors: dict[str, list[str]] = defaultdict(list)
    for _, (head, relation, tail) in _atomic_rows(kg, ("head_id", "relation_id", "tail_id")):
        if relation == DIRECTED_BY:
            for item_id in items_of_entity.get(head.strip(), ()):
                directors[item_id].append(f"fb:{tail.strip()}")
    return {item_id: tuple(dict.fromkeys(names)) for item_id, names in directors.items()}
