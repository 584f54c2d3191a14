from __future__ import annotations

import pytest

from streamrec.streams.tools.data.titles import clean_genres, parse_year, split_title_year


@pytest.mark.parametrize(
    ("raw", "title", "year"),
    [
        ("Toy Story (1995)", "Toy Story", 1995),
        ("Usual Suspects, The (1995)", "The Usual Suspects", 1995),
        (
            "Horseman on the Roof, The (Hussard sur le toit, Le) (1995)",
            "The Horseman on the Roof (Hussard sur le toit, Le)",
            1995,
        ),
        ("Appartement, L' (1996)", "L'Appartement", 1996),
        ("Seven (Se7en) (1995)", "Seven (Se7en)", 1995),
        ("Babylon 5 (1993–1998) ", "Babylon 5", 1993),
        ("American President, The", "The American President", None),
        ("unknown", "unknown", None),
        ("(500) Days of Summer (2009)", "(500) Days of Summer", 2009),
    ],
)
def test_split_title_year(raw: str, title: str, year: int | None) -> None:
    assert split_title_year(raw) == (title, year)


def test_parse_year_rejects_implausible_years() -> None:
    assert parse_year("1995") == 1995
    assert parse_year("0001") is None
    assert parse_year("unkonwn") is None
    assert parse_year("") is None


def test_clean_genres_drops_placeholders_and_duplicates() -> None:
    assert clean_genres(["Drama", "unknown", " Drama", "(no genres listed)", "Comedy", ""]) == (
        "Drama",
        "Comedy",
    )
