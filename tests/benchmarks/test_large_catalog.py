"""The large-catalog benchmark: three systems over one stream, the large path's lists compared with both
references, and each candidate source's recall."""

from __future__ import annotations

from streamrec.benchmarks.large_catalog import EVERY, EXACT, LARGE, SOURCES, run_large_catalog
from streamrec.benchmarks.large_catalog_report import render_markdown
from streamrec.benchmarks.workloads import EventGenerator, synthetic_catalog
from streamrec.models.events import UserEvent, parse_user_event
from streamrec.models.params import StreamParams

BASE_TS = 1_700_000_000_000


def test_the_large_catalog_benchmark_compares_the_paths_list_by_list() -> None:
    items = synthetic_catalog(300, seed=2)
    records = EventGenerator(items, n_users=60, seed=2, id_prefix="lc").events(900, base_ts_ms=BASE_TS)
    events: list[UserEvent] = [
        parse_user_event(r.topic, r.value, key=r.key.encode(), record_ts_ms=BASE_TS, now_ms=BASE_TS + 10**11,
                         item_exists=lambda _: True)
        for r in records
    ]  # fmt: skip
    # Few candidates, so that the candidate path is a real subset of the catalog.
    params = StreamParams(ann_candidates=20, popular_candidates=20, cowatched_candidates=20, ann_nprobe=4)
    run = run_large_catalog("synthetic", events, items, params, sample_every=3)
    assert set(run["systems"]) == {EXACT, LARGE, EVERY}
    assert run["points"] > 60 and run["sampled_points"] == run["points"] // 3
    # Scoring every item from the exact sparse counts gives the exact path's lists: the same HR.
    assert run["systems"][EVERY]["hr"] == run["systems"][EXACT]["hr"]
    assert run["cooccurrence"]["exact"] and run["cooccurrence"]["pairs"] > 0
    recall = run["recall_at_20_vs_every_item"]
    assert 0.5 < recall < 1.0  # 60 candidates or so of 300 items: close, not all
    assert run["identical_vs_every_item"] < 1.0
    sources = run["source_recall"]
    assert set(sources) == {*SOURCES, "all sources"}
    assert all(0.0 <= value <= 1.0 for value in sources.values() if value is not None)
    assert sources["co-watched"] <= sources["co-watched, all"]  # the cut keeps a subset
    assert sources["all sources"] >= max(sources[name] for name in SOURCES if name != "co-watched, all")
    assert 20 < run["mean_candidates"] <= 300
    table = render_markdown([run])
    assert "| synthetic | 900 | 300 |" in table and f"{recall:.4f}" in table
