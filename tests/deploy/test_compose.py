"""docker-compose.yml and deploy/Dockerfile: KRaft Kafka, topic creation, two workers, monitoring."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import PurePosixPath
from typing import Any

import pytest
from deploy_support import DEPLOY, ROOT, command, compose, env, load_yaml, mounts, worker_services

from streamrec.streams.settings import Settings

DOC = compose()
SERVICES: dict[str, dict[str, Any]] = DOC["services"]
WORKERS = worker_services(DOC)


def listeners(value: str) -> dict[str, str]:
    """'NAME://host:port,...' -> {NAME: 'host:port'}."""
    return dict(item.split("://", 1) for item in value.split(","))


def kafka() -> dict[str, str]:
    (svc,) = [s for s in SERVICES.values() if str(s.get("image", "")).startswith("apache/kafka:")]
    assert svc["image"] == "apache/kafka:3.9.0"
    return env(svc)


def test_kafka_runs_in_kraft_mode() -> None:
    k = kafka()
    assert set(k["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert k["CLUSTER_ID"]
    node, address = k["KAFKA_CONTROLLER_QUORUM_VOTERS"].split("@")
    assert node == k["KAFKA_NODE_ID"]
    own = listeners(k["KAFKA_LISTENERS"])
    assert k["KAFKA_CONTROLLER_LISTENER_NAMES"] in own
    assert address.endswith(":" + own[k["KAFKA_CONTROLLER_LISTENER_NAMES"]].rsplit(":", 1)[1])
    protocols = dict(p.split(":") for p in k["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert set(own) <= set(protocols)
    assert set(listeners(k["KAFKA_ADVERTISED_LISTENERS"])) <= set(own)
    assert not any("zookeeper" in str(s.get("image", "")).lower() for s in SERVICES.values())
    assert not any(key.startswith("KAFKA_ZOOKEEPER") for key in k)


def test_single_node_replication_settings_fit_one_broker() -> None:
    k = kafka()
    for key in ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"):
        assert k[key] == "1"
    for svc in [*WORKERS.values(), SERVICES["topics"]]:
        assert env(svc)["STREAMREC_REPLICATION_FACTOR"] == "1"


def test_two_workers_with_their_own_state_volumes() -> None:
    assert len(WORKERS) == 2
    volumes = []
    for name, svc in WORKERS.items():
        data_dir = PurePosixPath(env(svc)["STREAMREC_DATA_DIR"])
        (state,) = [m for m in mounts(svc) if not m.bind and data_dir.is_relative_to(m.target)]
        assert state.source in DOC["volumes"], f"{name}: volume {state.source} is not declared"
        volumes.append(state.source)
    assert len(set(volumes)) == len(volumes)


def test_every_worker_can_own_an_input_partition() -> None:
    # A worker beyond the input partitions gets no viewers, yet still folds the whole item-signal log.
    for name in ("topics", *WORKERS):
        assert len(WORKERS) <= int(env(SERVICES[name])["STREAMREC_PARTITIONS"]), name


@pytest.mark.parametrize("name", sorted(WORKERS))
def test_worker_reaches_kafka_and_serves_metrics(name: str) -> None:
    svc, e = WORKERS[name], env(WORKERS[name])
    advertised = listeners(kafka()["KAFKA_ADVERTISED_LISTENERS"]).values()
    assert e["STREAMREC_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert e["STREAMREC_BOOTSTRAP_SERVERS"] in advertised
    assert e["STREAMREC_WEB_HOST"] == "0.0.0.0"
    assert f":{e['STREAMREC_WEB_PORT']}/ready" in " ".join(svc["healthcheck"]["test"])
    assert svc["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert svc["depends_on"]["topics"]["condition"] == "service_completed_successfully"


def test_topics_service_creates_topics_once_kafka_is_healthy() -> None:
    topics = SERVICES["topics"]
    assert command(topics) == ["topics", "create"]
    assert topics["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert topics.get("restart", "no") == "no"
    assert all(w["build"] == topics["build"] and w["image"] == topics["image"] for w in WORKERS.values())


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_streamrec_environment_is_valid_settings(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    e = {k: v for k, v in env(SERVICES[name]).items() if k.startswith("STREAMREC_")}
    fields = {f"STREAMREC_{f.upper()}" for f in Settings.model_fields}
    assert set(e) <= fields
    for key, value in e.items():
        monkeypatch.setenv(key, value)
    Settings(_env_file=None)


def test_bind_mounts_exist() -> None:
    binds = [m for svc in SERVICES.values() for m in mounts(svc) if m.bind]
    assert binds
    for m in binds:
        assert (ROOT / m.source).exists(), m.source


def test_prometheus_loads_the_repo_config_and_rules() -> None:
    (svc,) = [s for s in SERVICES.values() if str(s.get("image", "")).startswith("prom/prometheus")]
    config_flag = next(c for c in command(svc) if c.startswith("--config.file="))
    config_target = PurePosixPath(config_flag.split("=", 1)[1])
    by_target = {PurePosixPath(m.target): ROOT / m.source for m in mounts(svc) if m.bind}
    assert by_target[config_target] == DEPLOY / "prometheus" / "prometheus.yml"
    for rule_file in load_yaml(by_target[config_target])["rule_files"]:
        assert by_target[config_target.parent / rule_file] == DEPLOY / "prometheus" / rule_file


def test_grafana_is_provisioned_from_the_repo() -> None:
    (svc,) = [s for s in SERVICES.values() if str(s.get("image", "")).startswith("grafana/grafana")]
    by_source = {(ROOT / m.source).resolve(): m.target for m in mounts(svc) if m.bind}
    assert by_source[DEPLOY / "grafana" / "provisioning"] == "/etc/grafana/provisioning"
    assert (DEPLOY / "grafana" / "dashboards").resolve() in by_source


@pytest.mark.parametrize("name", ["kafka", "prometheus", "grafana", *sorted(WORKERS)])
def test_long_running_services_have_healthchecks(name: str) -> None:
    assert SERVICES[name]["healthcheck"]["test"]


# --- Dockerfile ------------------------------------------------------------------------------------

DOCKERFILE = [line.strip() for line in (DEPLOY / "Dockerfile").read_text().splitlines()]
INSTRUCTIONS = [line for line in DOCKERFILE if line and not line.startswith("#")]


def instruction(name: str) -> list[str]:
    return [line.split(None, 1)[1] for line in INSTRUCTIONS if line.split(None, 1)[0] == name]


def test_dockerfile_builds_the_package_on_python_311_slim() -> None:
    assert instruction("FROM") == ["python:3.11-slim"]
    assert any(re.search(r"\bpip install \.(\s|$)", run) for run in instruction("RUN"))
    assert all(w["build"]["dockerfile"] == "deploy/Dockerfile" for w in WORKERS.values())


def test_dockerfile_runs_the_streamrec_script_as_non_root() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert json.loads(instruction("ENTRYPOINT")[-1]) == ["streamrec"] and "streamrec" in scripts
    assert json.loads(instruction("CMD")[-1]) == ["worker"]
    assert instruction("USER") and instruction("USER")[-1].split(":")[0] not in ("root", "0")


def test_dockerfile_copies_only_existing_paths() -> None:
    sources = [src for args in instruction("COPY") for src in args.split()[:-1] if not src.startswith("--")]
    assert sources
    for src in sources:
        assert (ROOT / src).exists(), src


def test_compose_build_context_is_the_repo_root() -> None:
    for svc in WORKERS.values():
        assert (ROOT / svc["build"]["context"]).resolve() == ROOT
        assert (ROOT / svc["build"]["dockerfile"]).is_file()
