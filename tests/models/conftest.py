"""A tiny hand-made catalog shared by the model tests."""

from __future__ import annotations

import pytest

from streamrec.models.events import CatalogItem

ITEMS = [
    CatalogItem("1", "Star Wars", ("Action", "Sci-Fi"), ("lucas",), 7260, 1977),
    CatalogItem("2", "The Empire Strikes Back", ("Action", "Sci-Fi"), ("kershner",), 7440, 1980),
    CatalogItem("3", "Return of the Jedi", ("Action", "Sci-Fi"), ("marquand",), 7860, 1983),
    CatalogItem("4", "Toy Story", ("Animation", "Comedy"), ("lasseter",), 4860, 1995),
    CatalogItem("5", "A Bug's Life", ("Animation", "Comedy"), ("lasseter",), 5700, 1998),
    CatalogItem("6", "Annie Hall", ("Comedy", "Romance"), ("allen",), 5580, 1977),
    CatalogItem("7", "Manhattan", ("Comedy", "Romance"), ("allen",), 5760, 1979),
    CatalogItem("8", "Alien", ("Horror", "Sci-Fi"), ("scott",), 7020, 1979),
    CatalogItem("9", "Blade Runner", ("Sci-Fi", "Thriller"), ("scott",), 7020, 1982),
    CatalogItem("10", "Casablanca", ("Drama", "Romance"), ("curtiz",), 6120, 1942),
    CatalogItem("11", "The Godfather", ("Crime", "Drama"), ("coppola",), 10500, 1972),
    CatalogItem("12", "Heat", ("Crime", "Thriller"), ("mann",), 10200, 1995),
]


@pytest.fixture
def items() -> list[CatalogItem]:
    return list(ITEMS)
