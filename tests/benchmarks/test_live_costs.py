"""The live-stream cost measurement: the worker's calls on small batches, both ways of publishing a list."""

from __future__ import annotations

import gc

from streamrec.benchmarks.live_costs import STEPS, run_live_costs
from streamrec.benchmarks.report import render_markdown
from streamrec.benchmarks.workloads import CatalogSpec, synthetic_catalog


def test_live_costs_time_every_step_and_both_paths_publish_the_same_bytes() -> None:
    spec = CatalogSpec("small", synthetic_catalog(300, seed=3), "synthetic")
    notes: list[str] = []
    result = run_live_costs(spec, n_events=2_000, n_users=400, batch=50, seed=3, on_progress=notes.append)
    assert result["status"] == "ok" and result["events"] == 1_000 and result["batch"] == 50
    assert result["identical_payloads"] is True
    again = run_live_costs(spec, n_events=2_000, n_users=400, batch=50, seed=3)
    assert len(result["lists_sha256"]) == 16 and again["lists_sha256"] == result["lists_sha256"]  # reproducible
    assert run_live_costs(spec, n_events=2_000, n_users=400, batch=50, seed=4)["lists_sha256"] != again["lists_sha256"]
    for path in ("json", "objects"):
        part = result[path]
        assert 1.0 <= part["events_per_list"] <= 50.0  # a list per viewer per batch, at least one event each
        assert all(part["us_per_event"][step] > 0 for step in STEPS)
        assert abs(sum(part["us_per_event"].values()) - part["us_per_event_total"]) < 1e-6
    assert result["json"]["lists"] == result["objects"]["lists"]
    assert result["speedup"] > 0
    assert any("timing" in note for note in notes)
    assert not gc.get_freeze_count()  # what it froze is handed back to the collector
    text = render_markdown({"meta": {}, "scenarios": [{"catalog": "small", "live": result}]})
    assert "A live stream's cost per event in-process, small (300 items)" in text
    assert f"{result['json']['us_per_event_total']:,.1f}" in text
    assert result["lists_sha256"] in text


def test_a_failed_live_cost_run_is_reported_with_its_reason() -> None:
    text = render_markdown({"meta": {}, "scenarios": [{"live": {"status": "failed", "reason": "boom"}}]})
    assert "Live costs: failed — boom" in text
