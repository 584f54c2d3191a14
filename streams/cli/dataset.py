"""`streamrec dataset fetch|info`: download MovieLens 100K into the cache; describe a dataset."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from streamrec.models.dataset import Dataset
from streamrec.streams.settings import get_settings

dataset_app = typer.Typer(help="Fetch and describe datasets (MovieLens).", no_args_is_help=True)
console = Console()

NAME_OPTION = typer.Option(
    "ml-100k", "--name", help="a dataset by name: ml-100k (fetched) or kuairand-pure (the shared local copy)"
)
PATH_OPTION = typer.Option(
    None,
    "--path",
    exists=True,
    file_okay=False,
    help="a MovieLens 'latest' CSV folder (ratings.csv, movies.csv, tags.csv); overrides --name",
)


@dataset_app.command()
def fetch(
    name: str = NAME_OPTION,
    force: bool = typer.Option(False, "--force", help="delete the cached copy and download it again"),
) -> None:
    """Download a dataset into STREAMREC_CACHE_DIR (GroupLens first, else the copy in the RecBole wheel)."""
    from streamrec.streams.tools.data import NAMED_DATASETS, DatasetError, fetch_movielens_100k, load_movielens_100k

    if name not in NAMED_DATASETS:
        console.print(f"[red]✗ unknown dataset {name!r}[/red]: choose one of {', '.join(NAMED_DATASETS)}")
        raise typer.Exit(2)
    cache_dir = get_settings().cache_dir
    try:
        source = fetch_movielens_100k(cache_dir, force=force)
        dataset = load_movielens_100k(cache_dir)  # verifies the checksums
    except DatasetError as error:
        console.print(f"[red]✗ {error}[/red]")
        raise typer.Exit(1) from error
    console.print(
        f"[green]✔[/green] {dataset.name}: {len(dataset.ratings):,} ratings of {len(dataset.items):,} items "
        f"by {dataset.n_users:,} users, verified, in {source.resolve()}"
    )


@dataset_app.command()
def info(name: str = NAME_OPTION, path: Path | None = PATH_OPTION) -> None:
    """Counts, time span, genres and the rating histogram of a dataset."""
    from streamrec.streams.tools.data import KUAIRAND, DatasetError, load_dataset, load_kuairand

    try:
        if name == KUAIRAND:
            kuairand = load_kuairand(path)
            console.print(f"{KUAIRAND}: {kuairand.counts().describe()}")
            dataset = kuairand.as_dataset()
        else:
            dataset = load_dataset(name=name, path=path, cache_dir=get_settings().cache_dir)
    except DatasetError as error:
        console.print(f"[red]✗ {error}[/red]")
        raise typer.Exit(1) from error
    console.print(overview_table(dataset))
    console.print(genre_table(dataset))
    console.print(rating_histogram(dataset))


def _date(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")


def overview_table(dataset: Dataset) -> Table:
    table = Table(title=f"dataset {dataset.name}", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    timestamps = [r.ts for r in dataset.ratings] + [s.ts for s in dataset.searches] + [p.ts for p in dataset.plays]
    rows = [
        ("users", f"{dataset.n_users:,}"),
        ("items", f"{len(dataset.items):,}"),
        ("ratings", f"{len(dataset.ratings):,}"),
        ("plays (recorded)", f"{len(dataset.plays):,}"),
        ("searches (tags)", f"{len(dataset.searches):,}"),
        ("items with creators", f"{sum(1 for item in dataset.items if item.creators):,}"),
    ]
    if timestamps:
        first, last = min(timestamps), max(timestamps)
        days = (last - first) / 86_400_000
        rows.append(("time span", f"{_date(first)} → {_date(last)} UTC ({days:,.0f} days)"))
    if dataset.ratings:
        mean = sum(r.rating for r in dataset.ratings) / len(dataset.ratings)
        density = len(dataset.ratings) / max(1, dataset.n_users * len(dataset.items))
        rows += [("mean rating", f"{mean:.2f}"), ("density", f"{density:.2%}")]
    for label, value in rows:
        table.add_row(label, value)
    return table


def genre_table(dataset: Dataset) -> Table:
    items_per_genre = Counter(genre for item in dataset.items for genre in item.genres)
    item_genres = {item.item_id: item.genres for item in dataset.items}
    ratings_per_genre = Counter(g for r in dataset.ratings for g in item_genres.get(r.item_id, ()))
    table = Table(title="genres")
    table.add_column("genre")
    table.add_column("items", justify="right")
    table.add_column("ratings", justify="right")
    for genre, count in items_per_genre.most_common():
        table.add_row(genre, f"{count:,}", f"{ratings_per_genre[genre]:,}")
    return table


def rating_histogram(dataset: Dataset, width: int = 40) -> Table:
    counts = Counter(r.rating for r in dataset.ratings)
    table = Table(title="ratings")
    table.add_column("stars", justify="right")
    table.add_column("count", justify="right")
    table.add_column("share", justify="right")
    table.add_column("")
    top = max(counts.values(), default=1)
    total = max(1, len(dataset.ratings))
    for value in sorted(counts):
        bar = "█" * max(1, round(width * counts[value] / top))
        table.add_row(f"{value:g}", f"{counts[value]:,}", f"{counts[value] / total:.1%}", bar)
    return table


def register(app: typer.Typer) -> None:
    app.add_typer(dataset_app, name="dataset")
