"""The PromQL scanner the other deploy tests rely on: it must see what an expression really uses."""

from __future__ import annotations

import pytest
from deploy_support import Metric, documented_metrics, expr_problems, scan

METRICS = {
    "a_total": Metric("a_total", "counter", frozenset({"topic"})),
    "h_seconds": Metric("h_seconds", "histogram", frozenset({"topic"})),
    "g": Metric("g", "gauge", frozenset({"table"})),
}


def test_documented_metrics_are_read_from_the_architecture_table() -> None:
    metrics = documented_metrics()
    assert metrics, "no metric rows found in docs/architecture.md"
    assert all(name.startswith("streamrec_") for name in metrics)
    assert {m.type for m in metrics.values()} <= {"counter", "gauge", "histogram"}
    assert all(" " not in label and "(" not in label for m in metrics.values() for label in m.labels)


def test_scan_finds_selectors_functions_and_grouping() -> None:
    usage = scan(
        'histogram_quantile(0.99, sum by (topic, le) (rate(h_seconds_bucket{topic=~"a|b"}[$__rate_interval])))'
        " > on () group_left max(g) offset 5m"
    )
    assert [(s.name, s.matchers, s.function) for s in usage.selectors] == [
        ("h_seconds_bucket", {"topic": "a|b"}, "rate"),
        ("g", {}, "max"),
    ]
    assert usage.grouping == {"topic", "le"}
    assert usage.functions == {"histogram_quantile", "sum", "rate", "max"}


def test_scan_reads_trailing_grouping_and_ignores_strings() -> None:
    usage = scan('sum(rate(a_total{topic="not_a_metric"}[5m])) by (topic) / 1e-9 and vector(0)')
    assert [s.name for s in usage.selectors] == ["a_total"]
    assert usage.grouping == {"topic"}


@pytest.mark.parametrize("bad", ["sum(rate(a_total[5m])", "a_total)", '{__name__="a_total"}', "a_total # x"])
def test_scan_rejects_what_it_cannot_read(bad: str) -> None:
    with pytest.raises(ValueError):
        scan(bad)


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        ("rate(b_total[5m])", "not a documented metric"),
        ("a_total", "not a rate"),
        ("sum(h_seconds_bucket)", "not a rate"),
        ("rate(g[5m])", "is a gauge"),
        ('rate(a_total{reason="x"}[5m])', "no label"),
        ("sum by (reason) (rate(a_total[5m]))", "grouping by label"),
        ("rate(g_bucket[5m])", "not a documented metric"),
    ],
)
def test_expr_problems_catch_misuse(expr: str, problem: str) -> None:
    assert any(problem in p for p in expr_problems(expr, METRICS)), expr_problems(expr, METRICS)


@pytest.mark.parametrize(
    "expr",
    [
        'histogram_quantile(0.5, sum by (le) (rate(h_seconds_bucket{job="w"}[5m])))',
        "sum by (table) (g) and on () up == 0",
        "rate(h_seconds_sum[5m]) / rate(h_seconds_count[5m])",
    ],
)
def test_expr_problems_accept_correct_use(expr: str) -> None:
    assert expr_problems(expr, METRICS) == []
