"""MovieLens "latest" CSV folders (ml-latest-small, ml-latest, ml-32m, ...) read from a local path; their
free-text tags, real user-typed queries, become searches.
"""

from __future__ import annotations

from pathlib import Path

from streamrec.models.dataset import Dataset
from streamrec.models.events import MAX_ID_CHARS, MAX_QUERY_CHARS, CatalogItem, Search
from streamrec.models.simulate import synthetic_duration_seconds
from streamrec.streams.tools.data.errors import DatasetError
from streamrec.streams.tools.data.rows import csv_rows, epoch_ms, parse_rating_rows
from streamrec.streams.tools.data.titles import clean_genres, split_title_year

RATINGS, MOVIES, TAGS = "ratings.csv", "movies.csv", "tags.csv"
_PREFIX_CHARS = MAX_ID_CHARS - len(":t:") - 9 - len(":search")  # room for a 9-digit row and a derived suffix


def load_movielens_latest(path: Path) -> Dataset:
    """The dataset in folder `path`. Raises `DatasetError` if a required file is missing or malformed.

    ratings.csv userId,movieId,rating,timestamp; movies.csv movieId,title,genres (pipe-separated); optional
    tags.csv userId,movieId,tag,timestamp, each tag a `Search` with clicked_item_id = movieId. Timestamps become
    epoch milliseconds; ids are `<prefix>:r:<row>` for ratings and `<prefix>:t:<row>` for tags (row = 1-based
    data row), the prefix being the folder name. The format has no runtimes or creators: runtimes are
    synthesized (`models.simulate.synthetic_duration_seconds`), creators stay empty.
    """
    path = Path(path)
    for required in (RATINGS, MOVIES):
        if not (path / required).is_file():
            raise DatasetError(
                f"no {required} in {path}: expected a MovieLens 'latest' folder with ratings.csv and "
                "movies.csv (tags.csv optional), e.g. ml-latest-small.zip from "
                "https://grouplens.org/datasets/movielens/ unpacked"
            )
    name = path.resolve().name or "movielens"
    prefix = name[:_PREFIX_CHARS]
    items = tuple(
        _movie(row, fields, path / MOVIES) for row, fields in csv_rows(path / MOVIES, ("movieId", "title", "genres"))
    )
    rows = csv_rows(path / RATINGS, ("userId", "movieId", "rating", "timestamp"))
    ratings = parse_rating_rows(rows, source=str(path / RATINGS), prefix=prefix)
    searches = _tags(path / TAGS, prefix) if (path / TAGS).is_file() else ()
    return Dataset(name=name, items=items, ratings=ratings, searches=searches)


def _movie(row: int, fields: list[str], source: Path) -> CatalogItem:
    item_id, raw_title, genres = (f.strip() for f in fields)
    if not item_id:
        raise DatasetError(f"{source}, row {row}: empty movieId")
    title, year = split_title_year(raw_title)
    return CatalogItem(
        item_id=item_id,
        title=title or item_id,
        genres=clean_genres(genres.split("|")),
        duration_seconds=synthetic_duration_seconds(item_id),
        year=year,
    )


def _tags(path: Path, prefix: str) -> tuple[Search, ...]:
    searches = []
    for row, (user, item, tag, seconds) in csv_rows(path, ("userId", "movieId", "tag", "timestamp")):
        query = " ".join(tag.split())[:MAX_QUERY_CHARS].strip()
        if not query:  # an empty tag is no query
            continue
        try:
            ts = epoch_ms(seconds)
        except ValueError as exc:
            raise DatasetError(f"{path}, row {row}: bad timestamp {seconds!r}") from exc
        searches.append(Search(f"{prefix}:t:{row}", user.strip(), query, ts, item.strip()))
    searches.sort(key=lambda s: s.ts)  # stable: equal timestamps keep file order
    return tuple(searches)
