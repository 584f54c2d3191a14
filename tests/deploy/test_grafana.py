"""deploy/grafana: provisioning points at the compose Prometheus and the dashboard covers every metric."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from deploy_support import (
    DEPLOY,
    ROOT,
    base_metric,
    compose,
    documented_metrics,
    expr_problems,
    load_json,
    load_yaml,
    mounts,
    scan,
)

GRAFANA = DEPLOY / "grafana"
DASHBOARD = load_json(GRAFANA / "dashboards" / "streamrec.json")
PANELS: list[dict[str, Any]] = DASHBOARD["panels"]
EXPRS = [t["expr"] for p in PANELS for t in p.get("targets", [])]


def datasource() -> dict[str, Any]:
    (ds,) = load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")["datasources"]
    assert isinstance(ds, dict) and ds["type"] == "prometheus"
    return ds


def service(image_prefix: str) -> dict[str, Any]:
    services: dict[str, dict[str, Any]] = compose()["services"]
    (svc,) = [s for s in services.values() if str(s.get("image", "")).startswith(image_prefix)]
    return svc


def test_datasource_url_is_the_compose_prometheus() -> None:
    url = urlsplit(datasource()["url"])
    names = [n for n, s in compose()["services"].items() if str(s.get("image", "")).startswith("prom/prometheus")]
    assert url.hostname in names
    container_ports = {str(p).rsplit(":", 1)[-1] for p in service("prom/prometheus")["ports"]}
    assert str(url.port) in container_ports


def test_dashboard_provider_reads_the_mounted_dashboards() -> None:
    (provider,) = load_yaml(GRAFANA / "provisioning" / "dashboards" / "streamrec.yml")["providers"]
    targets = {(ROOT / m.source).resolve(): m.target for m in mounts(service("grafana/grafana")) if m.bind}
    assert provider["options"]["path"] == targets[(GRAFANA / "dashboards").resolve()]


def test_panels_are_unique_and_laid_out_without_overlap() -> None:
    ids = [p["id"] for p in PANELS]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for p in PANELS:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["w"] >= 1 and g["x"] + g["w"] <= 24, p["title"]
        area = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & area, f"{p['title']} overlaps another panel"
        cells |= area


def test_panels_query_the_provisioned_datasource() -> None:
    uid = datasource()["uid"]
    for p in PANELS:
        assert p["targets"], p["title"]
        for item in (p, *p["targets"]):
            assert item["datasource"]["uid"] == uid, p["title"]
        ref_ids = [t["refId"] for t in p["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), p["title"]


@pytest.mark.parametrize("expr", EXPRS)
def test_queries_use_documented_metrics(expr: str) -> None:
    assert expr_problems(expr, documented_metrics()) == []


def test_every_documented_metric_has_a_panel() -> None:
    metrics = documented_metrics()
    shown = set()
    for expr in EXPRS:
        for sel in scan(expr).selectors:
            metric, _ = base_metric(sel.name, metrics)
            shown |= {metric.name} if metric else set()
    assert shown == set(metrics)


def quantiles(series: str) -> set[float]:
    found = set()
    for expr in EXPRS:
        if series in {s.name for s in scan(expr).selectors}:
            found |= {float(q) for q in re.findall(r"histogram_quantile\(\s*([0-9.]+)", expr)}
    return found


def test_freshness_and_ranking_show_tail_quantiles() -> None:
    assert {0.5, 0.95, 0.99} <= quantiles("streamrec_freshness_seconds_bucket")
    assert {0.5, 0.99} <= quantiles("streamrec_ranking_seconds_bucket")
    assert {0.99} <= quantiles("streamrec_processing_seconds_bucket")
    assert {0.5, 0.99} <= quantiles("streamrec_item_log_hop_seconds_bucket")
