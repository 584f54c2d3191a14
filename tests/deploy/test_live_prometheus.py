"""A real Prometheus, run with the repository's config and alert rules, scrapes a real worker on the session's
embedded broker: every Grafana dashboard query returns data through Prometheus' HTTP API, every alert rule
evaluates, the scraped metrics are the documented ones, and the worker's /ready answers 200 once it has started
with nothing left to handle."""

from __future__ import annotations

import math
import sys
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
import yaml
from deploy_support import DEPLOY, ROOT, documented_metrics, load_json, load_yaml, prometheus_tool

sys.path.insert(0, str(ROOT / "tests" / "streams"))  # the worker helpers the worker tests use

from worker_proc import (
    DEADLINE_S,
    WorkerProcess,
    play,
    publish_catalog,
    rating,
    run_sync,
    search,
    send,
    user_id,
    worker_settings,
)

from streamrec.streams.kafka.admin import PLAYS, RATINGS, SEARCHES
from streamrec.streams.settings import Settings
from streamrec.streams.tools.worker_process import ManagedProcess, free_port
from streamrec.streams.tools.worker_process import http_get as sync_http_get

pytestmark = pytest.mark.kafka

PROMETHEUS_DIR = DEPLOY / "prometheus"
DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
QUERIES = [(path.name, t["expr"]) for path in DASHBOARDS for p in load_json(path)["panels"] for t in p["targets"]]
# What Grafana puts in place of its range variables; 5m spans the whole test, so every increase is in the window.
GRAFANA_RANGE = "5m"


@dataclass(frozen=True)
class Stack:
    worker: WorkerProcess
    prometheus: str  # base URL


def get(url: str) -> tuple[int, Any]:
    status, _, body = sync_http_get(url, 10.0)
    return status, orjson.loads(body) if body.startswith((b"{", b"[")) else body


def query(stack: Stack, expr: str) -> list[dict[str, Any]]:
    status, body = get(f"{stack.prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    assert status == 200 and body["status"] == "success", f"{expr}: {status} {body}"
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def prometheus_config(worker_port: int) -> dict[str, Any]:
    """The repository's config with 1 s intervals, its rule files by absolute path and the worker job aimed at the
    test's worker (the other jobs dropped)."""
    config: dict[str, Any] = load_yaml(PROMETHEUS_DIR / "prometheus.yml")
    config["global"] |= {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(PROMETHEUS_DIR / name) for name in config["rule_files"]]
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "streamrec-worker"]
    job["static_configs"] = [{"targets": [f"127.0.0.1:{worker_port}"]}]
    config["scrape_configs"] = [job]
    return config


def wait_for(what: str, check: Any, timeout_s: float = DEADLINE_S) -> Any:
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        ok, last = check()
        if ok:
            return last
        time.sleep(0.5)
    raise TimeoutError(f"{what}; last: {last!r}")


@pytest.fixture(scope="module")
def stack(broker_settings: Settings, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    binary = prometheus_tool("prometheus")
    root = tmp_path_factory.mktemp("live-prometheus")
    run_sync(publish_catalog(kafka_bootstrap))
    settings = worker_settings(broker_settings, root / "worker", app_id=f"live-{uuid.uuid4().hex[:6]}")
    worker = WorkerProcess(settings, root / "worker.log")
    port = free_port()
    config = root / "prometheus.yml"
    config.write_text(yaml.safe_dump(prometheus_config(settings.web_port)))
    prometheus = ManagedProcess(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={root / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        root / "prometheus.log",
    )
    try:
        worker.start()
        run_sync(worker.wait_healthy())
        prometheus.start()
        base = f"http://127.0.0.1:{port}"
        wait_for("Prometheus ready", lambda: (prometheus.alive() and get(f"{base}/-/ready")[0] == 200, None))
        yield Stack(worker, base)
    finally:
        prometheus_code = prometheus.stop(timeout_s=30.0)
        worker_code = worker.stop()
        assert worker_code == 0, f"worker did not stop cleanly ({worker_code}):\n{worker.log_tail()}"
        assert prometheus_code == 0, f"prometheus exit {prometheus_code}:\n{prometheus.log_tail()}"


def test_worker_is_ready_once_started_with_nothing_left(stack: Stack) -> None:
    url = f"{stack.worker.base_url}/ready"

    def caught_up() -> tuple[bool, Any]:
        status, body = get(url)
        judged = isinstance(body, dict) and body["partitions"]
        return bool(judged and all(p["state"] == "caught_up" for p in body["partitions"])), (status, body)

    status, body = wait_for("every assigned partition caught up in /ready", caught_up)
    assert status == 200 and body["status"] == "ready" and body["assigned_twice"] == []
    judged = {(p["topic"], p["partition"]) for p in body["partitions"]}
    assert {(topic, n) for topic in (RATINGS, PLAYS, SEARCHES) for n in range(4)} <= judged
    assert all(p["lag"] == 0 for p in body["partitions"])


def send_traffic(bootstrap: str) -> None:
    """Valid events of every kind, a duplicate and invalid records, so every metric has something to show."""
    users = [user_id("live") for _ in range(3)]
    events = []
    for n, user in enumerate(users):
        events += [
            (RATINGS, rating(user, f"syn-{n:02d}", 4.0), user),
            (PLAYS, play(user, f"syn-{n + 5:02d}"), user),
            (SEARCHES, search(user, "harbor"), user),
        ]
    twice = rating(users[0], "syn-07", 5.0)
    events += [(RATINGS, twice, users[0]), (RATINGS, twice, users[0])]
    events += [
        (RATINGS, b"not json", users[1]),
        (RATINGS, rating(users[1], "no-such-item", 3.0), users[1]),
        (PLAYS, {"event_id": uuid.uuid4().hex, "user_id": users[2]}, users[2]),
    ]

    async def produce() -> None:
        for topic, value, key in events:
            await send(bootstrap, topic, value, key=key)

    run_sync(produce())


@pytest.fixture(scope="module")
def with_traffic(stack: Stack, kafka_bootstrap: str) -> Stack:
    send_traffic(kafka_bootstrap)
    wait_for(
        "the dead letters counted",
        lambda: (bool(query(stack, "sum(streamrec_events_rejected_total) >= 3")), None),
    )
    return stack


def finite(result: list[dict[str, Any]]) -> bool:
    return any(math.isfinite(float(series["value"][1])) for series in result)


def test_every_dashboard_query_returns_data(with_traffic: Stack) -> None:
    assert QUERIES
    pending = {(name, expr): expr.replace("$__rate_interval", GRAFANA_RANGE) for name, expr in QUERIES}
    deadline = time.monotonic() + DEADLINE_S
    while pending and time.monotonic() < deadline:
        for key, expr in list(pending.items()):
            if finite(query(with_traffic, expr)):
                del pending[key]
        time.sleep(1.0)
    assert not pending, f"queries without data: {sorted(pending)}"


def test_every_alert_rule_evaluates_and_the_worker_down_alerts_stay_quiet(with_traffic: Stack) -> None:
    expected = {r["alert"] for g in load_yaml(PROMETHEUS_DIR / "alerts.yml")["groups"] for r in g["rules"]}

    def evaluated() -> tuple[bool, Any]:
        _, body = get(f"{with_traffic.prometheus}/api/v1/rules")
        rules = {r["name"]: r for g in body["data"]["groups"] for r in g["rules"]}
        return bool(rules) and all(r.get("lastEvaluation", "0001").startswith("20") for r in rules.values()), rules

    rules = wait_for("every rule evaluated once", evaluated)
    assert set(rules) == expected
    for name, rule in rules.items():
        assert rule["health"] == "ok" and not rule.get("lastError"), f"{name}: {rule.get('lastError')}"
    for name in ("StreamrecWorkerDown", "StreamrecAllWorkersDown", "StreamrecPartitionStuck"):
        assert rules[name]["state"] == "inactive", name


def test_scraped_metrics_are_the_documented_ones(with_traffic: Stack) -> None:
    _, body = get(f"{with_traffic.prometheus}/api/v1/metadata")
    types = {name: entries[0]["type"] for name, entries in body["data"].items() if name.startswith("streamrec_")}
    documented = documented_metrics()
    for name, metric in documented.items():
        family = name.removesuffix("_total") if metric.type == "counter" else name
        assert types.get(family) == metric.type or types.get(name) == metric.type, (name, types)
        series = name + "_bucket" if metric.type == "histogram" else name
        labels = {key for s in query(with_traffic, series) for key in s["metric"]}
        assert labels, f"no series for {series}"
        assert labels - {"__name__", "job", "instance", "le"} == metric.labels, name
    undocumented = {f for f in types if f not in documented and f + "_total" not in documented}
    assert not undocumented
