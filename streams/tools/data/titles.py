"""Catalog text clean-up shared by the MovieLens formats: titles, years, genres."""

from __future__ import annotations

import re

MIN_YEAR, MAX_YEAR = 1850, 2200  # the catalog contract's range (models.events.parse_catalog_item)

# "Toy Story (1995)", "Babylon 5 (1993–1998)" and a stray trailing space, as MovieLens writes them.
_TITLE_YEAR = re.compile(r"^(?P<title>.*?)\s*\((?P<year>\d{4})(?:\s*[-–]\s*\d{0,4})?\)\s*$")
# MovieLens moves leading articles to the end: "Usual Suspects, The", "Horseman on the Roof, The (Hussard…)".
_TRAILING_ARTICLE = re.compile(
    r"^(?P<main>.+?), (?P<article>The|A|An|Les|La|Le|L'|Il|Lo|Das|Der|Die|Den|Det|El|Los|Las|Une|Un)"
    r"(?P<rest>\s*\(.*\))?$"
)
# Placeholders MovieLens uses for "no genre".
NO_GENRE = frozenset({"unknown", "(no genres listed)"})


def parse_year(text: str) -> int | None:
    """A plausible year from a 4-digit string, else None."""
    text = text.strip()
    if len(text) == 4 and text.isdigit() and MIN_YEAR <= int(text) <= MAX_YEAR:
        return int(text)
    return None


def split_title_year(raw: str) -> tuple[str, int | None]:
    """'Usual Suspects, The (1995)' -> ('The Usual Suspects', 1995): the article goes back in front."""
    title, year = raw.strip(), None
    match = _TITLE_YEAR.match(title)
    if match and match.group("title"):
        title, year = match.group("title"), parse_year(match.group("year"))
    return restore_article(title), year


def restore_article(title: str) -> str:
    match = _TRAILING_ARTICLE.match(title)
    if not match:
        return title
    article = match.group("article")
    separator = "" if article.endswith("'") else " "
    return f"{article}{separator}{match.group('main')}{match.group('rest') or ''}"


def clean_genres(names: list[str]) -> tuple[str, ...]:
    """Drop MovieLens' 'no genre' placeholders and duplicates, keep the order."""
    return tuple(dict.fromkeys(n.strip() for n in names if n.strip() and n.strip() not in NO_GENRE))
