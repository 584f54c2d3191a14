"""Row parsing shared by the dataset loaders."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from streamrec.models.events import Rating
from streamrec.streams.tools.data.errors import DatasetError


def epoch_ms(seconds: str) -> int:
    """Unix seconds as written in the files ("881250949", "881250949.0") -> epoch milliseconds."""
    text = seconds.strip()
    return int(float(text) * 1000) if "." in text or "e" in text.lower() else int(text) * 1000


def numbered(lines: Iterable[str], separator: str) -> Iterator[tuple[int, list[str]]]:
    """Non-blank lines split by `separator`, numbered from 1."""
    row = 0
    for line in lines:
        if line.strip():
            row += 1
            yield row, line.rstrip("\r\n").split(separator)


def parse_rating_rows(rows: Iterable[tuple[int, Sequence[str]]], *, source: str, prefix: str) -> tuple[Rating, ...]:
    """(row, [user, item, rating, unix seconds]) -> Ratings sorted by (ts, row), ids `<prefix>:r:<row>`."""
    ratings = []
    for row, fields in rows:
        try:
            user, item, value, seconds = (f.strip() for f in fields[:4])
            rating = float(value)
            ts = epoch_ms(seconds)
        except ValueError as exc:
            raise DatasetError(f"{source}, row {row}: cannot parse {list(fields)!r} ({exc})") from exc
        if not (user and item and 0.5 <= rating <= 5.0 and ts >= 0):
            raise DatasetError(f"{source}, row {row}: invalid rating {list(fields)!r}")
        ratings.append(Rating(f"{prefix}:r:{row}", user, item, rating, ts))
    ratings.sort(key=lambda r: r.ts)  # stable: equal timestamps keep file order
    return tuple(ratings)


def csv_rows(path: Path, columns: tuple[str, ...]) -> Iterator[tuple[int, list[str]]]:
    """Rows of a CSV file with a header, projected onto `columns`, numbered from 1 (quoted commas ok)."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            header = [h.strip().lstrip("\ufeff") for h in next(reader, [])]
            missing = [c for c in columns if c not in header]
            if missing:
                raise DatasetError(f"{path} lacks column(s) {missing} (header: {header})")
            positions = [header.index(c) for c in columns]
            row = 0
            for fields in reader:
                if not fields:
                    continue
                row += 1
                if len(fields) < len(header):
                    raise DatasetError(f"{path}, row {row}: expected {len(header)} fields, got {fields!r}")
                yield row, [fields[p] for p in positions]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"cannot read {path} ({exc})") from exc
