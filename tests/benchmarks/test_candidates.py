"""The list-recall measurement runs the worker's candidate ranker against itself scoring every item."""

from __future__ import annotations

from streamrec.benchmarks.candidates import run_candidate_ranking
from streamrec.benchmarks.report import render_markdown
from streamrec.benchmarks.workloads import CatalogSpec, synthetic_catalog
from streamrec.models.recommender import StreamParams


def test_candidate_lists_are_measured_against_scoring_every_item() -> None:
    spec = CatalogSpec("small", synthetic_catalog(600, seed=2), "synthetic")
    params = StreamParams(exact_max_items=100, popular_candidates=30, ann_candidates=30, query_candidates=30)
    notes: list[str] = []
    result = run_candidate_ranking(
        spec, n_events=3_000, n_users=300, n_lists=60, seed=2, params=params, on_progress=notes.append
    )
    assert result["status"] == "ok" and result["items"] == 600 and result["lists"] == 60
    assert 0.8 <= result["recall_at_n"] <= 1.0  # most of what scoring every item picks, not necessarily all
    assert 0 <= result["identical_lists"] <= 60
    assert result["us_per_list"] > 0 and result["exhaustive_us_per_list"] > 0
    assert result["params"]["query_candidates"] == 30
    assert any("timing" in note for note in notes)
    text = render_markdown({"meta": {}, "scenarios": [], "candidate_ranking": result})
    assert "candidate ranking vs scoring every item" in text and f"{result['recall_at_n']:.3f}" in text


def test_a_catalog_within_the_exact_limit_is_skipped_with_the_reason() -> None:
    spec = CatalogSpec("tiny", synthetic_catalog(50, seed=2), "synthetic")
    result = run_candidate_ranking(spec, n_events=100, n_users=10, n_lists=5, params=StreamParams(exact_max_items=100))
    assert result["status"] == "skipped" and "exact_max_items" in result["reason"]
    assert "Candidate ranking: skipped" in render_markdown({"meta": {}, "scenarios": [], "candidate_ranking": result})
