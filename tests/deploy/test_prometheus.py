"""deploy/prometheus: promtool checks the config and rules and runs the alerts' unit tests (alerts.test.yml, a case
where each alert fires and one where it does not); the scrape config matches the compose workers; alert rules use
documented metrics."""

from __future__ import annotations

import re
import subprocess
from typing import Any

import pytest
from deploy_support import (
    AGGREGATIONS,
    DEPLOY,
    TARGET_LABELS,
    base_metric,
    compose,
    documented_metrics,
    env,
    expr_problems,
    load_yaml,
    prometheus_tool,
    scan,
    worker_services,
)

PROMETHEUS = DEPLOY / "prometheus"
SEVERITIES = {"critical", "warning", "info"}


def rules() -> list[dict[str, Any]]:
    doc = load_yaml(PROMETHEUS / "alerts.yml")
    return [rule for group in doc["groups"] for rule in group["rules"]]


ALERTS = [r for r in rules() if "alert" in r]


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([prometheus_tool("promtool"), *args], cwd=PROMETHEUS, capture_output=True, text=True)


def test_promtool_accepts_the_config_and_its_rules() -> None:
    checked = promtool("check", "config", "prometheus.yml")  # checks the rule files it names as well
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(rules())} rules found" in checked.stdout


def test_alerts_pass_their_promtool_unit_tests() -> None:
    tested = promtool("test", "rules", "alerts.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_alert_unit_tests_see_every_alert_fire_and_stay_quiet() -> None:
    doc = load_yaml(PROMETHEUS / "alerts.test.yml")
    assert doc["rule_files"] == ["alerts.yml"]
    checks = [check for case in doc["tests"] for check in case["alert_rule_test"]]
    for name in (a["alert"] for a in ALERTS):
        outcomes = [bool(c["exp_alerts"]) for c in checks if c["alertname"] == name]
        assert True in outcomes, f"no case where {name} fires"
        assert False in outcomes, f"no case where {name} stays quiet"


def test_rule_files_exist() -> None:
    config = load_yaml(PROMETHEUS / "prometheus.yml")
    assert config["rule_files"]
    for name in config["rule_files"]:
        assert (PROMETHEUS / name).is_file(), name


def test_scrape_job_covers_every_compose_worker() -> None:
    config = load_yaml(PROMETHEUS / "prometheus.yml")
    workers = worker_services(compose())
    expected = {f"{name}:{env(svc)['STREAMREC_WEB_PORT']}" for name, svc in workers.items()}
    jobs = [j for j in config["scrape_configs"] if j.get("metrics_path", "/metrics") == "/metrics"]
    targets = {t for j in jobs for sc in j.get("static_configs", []) for t in sc["targets"]}
    assert expected and expected <= targets


def test_alerts_exist_and_groups_have_unique_names() -> None:
    doc = load_yaml(PROMETHEUS / "alerts.yml")
    names = [g["name"] for g in doc["groups"]]
    assert len(names) == len(set(names))
    alert_names = [a["alert"] for a in ALERTS]
    assert len(alert_names) >= 5 and len(alert_names) == len(set(alert_names))


@pytest.mark.parametrize("rule", ALERTS, ids=lambda r: r["alert"])
def test_alert_is_well_formed(rule: dict[str, Any]) -> None:
    assert re.fullmatch(r"[A-Z][A-Za-z0-9]+", rule["alert"])
    assert re.fullmatch(r"\d+[smhdw]", rule.get("for", "")), "every alert needs a `for` to ride out blips"
    assert rule["labels"]["severity"] in SEVERITIES
    for key in ("summary", "description", "runbook"):
        assert str(rule["annotations"].get(key, "")).strip(), f"missing annotation {key}"


@pytest.mark.parametrize("rule", ALERTS, ids=lambda r: r["alert"])
def test_alert_uses_documented_metrics(rule: dict[str, Any]) -> None:
    assert expr_problems(rule["expr"], documented_metrics()) == []
    # About streamrec: one of its metrics, or a series every target has (up, process_*) of the worker's job.
    assert any(
        s.name.startswith("streamrec_") or s.name == "up" or s.matchers.get("job") == "streamrec-worker"
        for s in scan(rule["expr"]).selectors
    )


@pytest.mark.parametrize("rule", ALERTS, ids=lambda r: r["alert"])
def test_annotations_only_use_labels_the_expression_keeps(rule: dict[str, Any]) -> None:
    usage = scan(rule["expr"])
    if usage.functions & AGGREGATIONS:
        kept = usage.grouping - {"le"}
    else:
        metrics = documented_metrics()
        kept = set(TARGET_LABELS)
        for sel in usage.selectors:
            metric, _ = base_metric(sel.name, metrics)
            kept |= metric.labels if metric else set()
    used = set(re.findall(r"\$labels\.(\w+)", " ".join(map(str, rule["annotations"].values()))))
    assert used <= kept


def test_up_alerts_select_the_worker_scrape_job() -> None:
    jobs = {j["job_name"] for j in load_yaml(PROMETHEUS / "prometheus.yml")["scrape_configs"]}
    selected = {s.matchers.get("job") for a in ALERTS for s in scan(a["expr"]).selectors if s.name == "up"}
    assert selected and selected <= jobs


def test_alerts_cover_the_main_failure_modes() -> None:
    used = {s.name for a in ALERTS for s in scan(a["expr"]).selectors}
    for series in (
        "up",
        "streamrec_events_rejected_total",
        "streamrec_freshness_seconds_bucket",
        "streamrec_consumer_lag",
        "streamrec_lists_published_total",
        "streamrec_ranking_seconds_bucket",
        "streamrec_item_log_lag",
        "streamrec_item_state_age_seconds",
    ):
        assert series in used, f"no alert on {series}"
