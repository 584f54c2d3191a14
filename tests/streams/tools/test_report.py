"""The report files (markdown, PNGs, JSON) and the `streamrec evaluate` command on a small synthetic dataset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from streamrec.models.base import Recommender
from streamrec.models.baselines import IncrementalPopularity
from streamrec.models.dataset import Dataset
from streamrec.models.evaluate import EvalResult, prequential
from streamrec.models.events import CatalogItem, Rating, UserEvent
from streamrec.streams.cli import evaluate as evaluate_cli
from streamrec.streams.tools.report import CalibrationPoint, RunInfo, write_report

GENRES = ("Action", "Comedy", "Drama", "Horror")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def synthetic_dataset(n_users: int = 15, n_items: int = 25, n_ratings: int = 240, seed: int = 1) -> Dataset:
    rng = np.random.default_rng(seed)
    items = tuple(
        CatalogItem(
            str(i),
            f"Film {i}",
            (GENRES[i % 4],) if i % 5 else (GENRES[i % 4], GENRES[(i + 1) % 4]),
            (f"c{i % 6}",) if i % 3 else (),  # a third without creators
        )
        for i in range(n_items)
    )
    popularity = 1.0 / np.arange(1, n_items + 1)
    popularity /= popularity.sum()
    seen: set[tuple[str, str]] = set()
    ratings: list[Rating] = []
    while len(ratings) < n_ratings:
        user, item = f"u{rng.integers(n_users)}", str(rng.choice(n_items, p=popularity))
        if (user, item) in seen:
            continue
        seen.add((user, item))
        ratings.append(Rating(f"r{len(ratings)}", user, item, float(rng.integers(1, 6)), 60_000 * len(ratings)))
    return Dataset("synthetic", items, tuple(ratings))


def evaluate_small() -> dict[str, EvalResult]:
    data = synthetic_dataset()
    systems: dict[str, Recommender] = {"popularity": IncrementalPopularity(), "streamrec λ=0": IncrementalPopularity()}
    return prequential(data.ratings, data.items, systems, k=5, list_length=8, sample_every=50)


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 5_000


def test_write_report(tmp_path: Path) -> None:
    results = evaluate_small()
    info = RunInfo("synthetic", 240, 1.5, 1.2, {"k": 5, "seed": 1}, ("a note",))
    files = write_report(tmp_path / "out", results, info, [CalibrationPoint(0.0, "streamrec λ=0")])
    report = files.report.read_text(encoding="utf-8")
    assert "| system | HR@5 | NDCG@5 | MRR@8 | coverage | exposure Gini | top 1% share | creator gap |" in report
    assert "## Exposure by creator" in report
    assert_png(files.report.parent / "creator_exposure.png")
    assert "| popularity |" in report and "## Protocol" in report and "a note" in report
    assert "1.5 s wall-clock" in report
    assert_png(files.hr_over_time)
    assert_png(files.calibration_tradeoff)
    document = json.loads(files.results.read_text(encoding="utf-8"))
    assert document["results"]["popularity"]["hr"] == pytest.approx(results["popularity"].hr)
    assert document["results"]["popularity"]["hr_over_time"][-1]["events"] == 240
    popularity = results["popularity"]
    assert 0.0 < popularity.exposure_gini < 1.0 and 0.0 < popularity.top_share <= 1.0
    assert document["results"]["popularity"]["exposure_gini"] == pytest.approx(popularity.exposure_gini)
    assert popularity.creator_gap is not None and 0.0 <= popularity.creator_gap <= 1.0
    assert set(popularity.creator_shares) == {"c1", "c2", "c4", "c5"}  # c0 and c3: items without creators
    assert "creator_shares" not in document["results"]["popularity"]  # one row a creator: the plot only
    assert document["calibration"] == [{"weight": 0.0, "system": "streamrec λ=0"}]
    assert document["run"]["settings"]["seed"] == 1


def test_write_report_without_streamrec(tmp_path: Path) -> None:
    results = {"popularity": evaluate_small()["popularity"]}
    files = write_report(tmp_path, results, RunInfo("synthetic", 240, 1.0, 1.0))
    assert_png(files.calibration_tradeoff)
    assert "Calibration trade-off" not in files.report.read_text(encoding="utf-8")


def test_parse_weights() -> None:
    assert evaluate_cli.parse_weights("0.3, 0,0.1,0.3,") == [0.0, 0.1, 0.3]
    with pytest.raises(typer.BadParameter):
        evaluate_cli.parse_weights("0,2")
    with pytest.raises(typer.BadParameter):
        evaluate_cli.parse_weights("x")


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    data = synthetic_dataset()
    built: list[tuple[float, bool, int]] = []

    def fake_streamrec(weight: float, searches: bool, *, top_n: int = 20) -> Recommender:
        built.append((weight, searches, top_n))
        return IncrementalPopularity()

    def fake_events(dataset: Dataset, *, plays: bool, searches: bool, seed: int) -> list[UserEvent]:
        return list(dataset.ratings)

    monkeypatch.setattr(evaluate_cli, "load_data", lambda name, path, cache_dir: data)
    monkeypatch.setattr(evaluate_cli, "load_events", fake_events)
    monkeypatch.setattr(evaluate_cli, "build_streamrec", fake_streamrec)
    views: list[float] = []

    def fake_view(learner: Recommender, weight: float) -> Recommender:
        views.append(weight)
        return IncrementalPopularity()

    monkeypatch.setattr(evaluate_cli, "calibration_view", fake_view)
    loops: list[tuple[float, int]] = []

    def fake_loop(weight: float, searches: bool, *, top_n: int, every: int) -> Recommender:
        loops.append((weight, every))
        return IncrementalPopularity()

    monkeypatch.setattr(evaluate_cli, "build_deployed_loop", fake_loop)
    monkeypatch.setattr(evaluate_cli, "streamrec_available", lambda: True)
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """test app"""

    evaluate_cli.register(app)
    app.built = built  # type: ignore[attr-defined]
    app.views = views  # type: ignore[attr-defined]
    app.loops = loops  # type: ignore[attr-defined]
    return app


def test_evaluate_command_writes_the_report(cli: typer.Typer, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    result = CliRunner().invoke(
        cli,
        ["evaluate", "--out", str(out), "--calibration-weights", "0,0.5", "--als-every", "100", "--als-factors", "4"],
    )
    assert result.exit_code == 0, result.output
    assert cli.built == [(0.0, False, 20)]  # type: ignore[attr-defined]
    assert cli.views == [0.5]  # type: ignore[attr-defined]  # ranked from the first one's state
    assert cli.loops == [(0.0, 20_000)]  # type: ignore[attr-defined]  # the default weight was not swept
    for name in ("report.md", "hr_over_time.png", "calibration_tradeoff.png", "results.json"):
        assert (out / name).stat().st_size > 0
    document = json.loads((out / "results.json").read_text(encoding="utf-8"))
    baselines = {"popularity", "als-retrained", "als-foldin", "trending", "item-knn", "ease"}
    systems = list(document["results"])
    assert set(systems) == baselines | {"streamrec λ=0", "streamrec λ=0 (deployed loop)", "streamrec λ=0.5"}
    assert systems.index("streamrec λ=0 (deployed loop)") == systems.index("streamrec λ=0") + 1
    assert "retrained every 20,000 interactions" in document["run"]["settings"]["deployed loop"]
    assert all(r["eval_points"] == 240 for r in document["results"].values())
    assert_png(out / "calibration_tradeoff.png")


def test_evaluate_command_baselines_only(cli: typer.Typer, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["evaluate", "--out", str(tmp_path), "--no-streamrec", "--limit", "100"])
    assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert set(document["results"]) == {"popularity", "als-retrained", "als-foldin", "trending", "item-knn", "ease"}
    assert document["run"]["events"] == 100
    assert cli.built == []  # type: ignore[attr-defined]
    assert cli.loops == []  # type: ignore[attr-defined]


def test_evaluate_command_without_the_deployed_loop(cli: typer.Typer, tmp_path: Path) -> None:
    args = ["evaluate", "--out", str(tmp_path), "--no-baselines", "--calibration-weights", "0.6,0.9"]
    result = CliRunner().invoke(cli, [*args, "--retrain-every", "0"])
    assert result.exit_code == 0, result.output
    assert set(json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))["results"]) == {
        "streamrec λ=0.6",
        "streamrec λ=0.9",
    }
    result = CliRunner().invoke(cli, [*args, "--retrain-every", "500"])
    assert result.exit_code == 0, result.output
    assert cli.loops == [(0.6, 500)]  # type: ignore[attr-defined]  # the default weight, swept
