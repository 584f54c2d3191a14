"""deploy/k8s: the StatefulSet, its headless Service, ConfigMap and PodDisruptionBudget fit together."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

import pytest
from deploy_support import DEPLOY, load_yaml_all

from streamrec.streams.settings import Settings

K8S = DEPLOY / "k8s"
FILES = ("namespace.yaml", "configmap.yaml", "statefulset.yaml", "service.yaml", "pdb.yaml")


def objects() -> dict[str, dict[str, Any]]:
    """kind -> the one object of that kind across the manifests."""
    out: dict[str, dict[str, Any]] = {}
    for name in FILES:
        for doc in load_yaml_all(K8S / name):
            assert doc["kind"] not in out, f"second {doc['kind']} in {name}"
            out[doc["kind"]] = doc
    return out


OBJ = objects()
STS, CONFIG = OBJ["StatefulSet"], OBJ["ConfigMap"]["data"]
POD = STS["spec"]["template"]
(CONTAINER,) = POD["spec"]["containers"]


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def test_every_file_holds_well_formed_objects() -> None:
    assert set(OBJ) == {"Namespace", "ConfigMap", "StatefulSet", "Service", "PodDisruptionBudget"}
    namespace = OBJ["Namespace"]["metadata"]["name"]
    for kind, obj in OBJ.items():
        assert obj["apiVersion"] and obj["metadata"]["name"], kind
        if kind != "Namespace":
            assert obj["metadata"]["namespace"] == namespace, kind


def test_configmap_is_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert all(isinstance(v, str) for v in CONFIG.values()), "ConfigMap values must be strings"
    assert set(CONFIG) <= {f"STREAMREC_{f.upper()}" for f in Settings.model_fields}
    for key, value in CONFIG.items():
        monkeypatch.setenv(key, value)
    settings = Settings(_env_file=None)
    assert settings.web_host == "0.0.0.0"


def test_statefulset_reads_the_configmap() -> None:
    refs = [e["configMapRef"]["name"] for e in CONTAINER["envFrom"] if "configMapRef" in e]
    assert refs == [OBJ["ConfigMap"]["metadata"]["name"]]


def test_data_dir_is_on_a_persistent_volume_claim() -> None:
    claims = {t["metadata"]["name"] for t in STS["spec"]["volumeClaimTemplates"]}
    data_dir = PurePosixPath(CONFIG["STREAMREC_DATA_DIR"])
    on_claim = [m for m in CONTAINER["volumeMounts"] if m["name"] in claims and data_dir.is_relative_to(m["mountPath"])]
    assert on_claim, f"{data_dir} is not under a volumeClaimTemplates mount"
    # The deepest mount wins: nothing ephemeral may shadow the claim at or above the data dir.
    deepest = max(
        (m for m in CONTAINER["volumeMounts"] if data_dir.is_relative_to(m["mountPath"])),
        key=lambda m: len(PurePosixPath(m["mountPath"]).parts),
    )
    assert deepest["name"] in claims


def test_probes_and_scrape_annotations_use_the_web_port() -> None:
    port = int(CONFIG["STREAMREC_WEB_PORT"])
    named = {p["name"]: p["containerPort"] for p in CONTAINER["ports"]}
    for probe in ("readinessProbe", "livenessProbe"):
        action = CONTAINER[probe].get("httpGet") or CONTAINER[probe]["tcpSocket"]
        assert named.get(action["port"], action["port"]) == port, probe
    annotations = POD["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == port
    assert annotations["prometheus.io/path"] == "/metrics"
    assert CONTAINER["readinessProbe"]["httpGet"]["path"] == "/ready"


def test_container_runs_the_worker_with_resource_requests() -> None:
    assert CONTAINER["args"] == ["worker"]
    assert {"cpu", "memory"} <= set(CONTAINER["resources"]["requests"])


def test_headless_service_and_selectors_match_the_pods() -> None:
    service, pdb = OBJ["Service"], OBJ["PodDisruptionBudget"]
    labels = POD["metadata"]["labels"]
    assert service["spec"]["clusterIP"] == "None"
    assert STS["spec"]["serviceName"] == service["metadata"]["name"]
    assert matches(service["spec"]["selector"], labels)
    assert matches(STS["spec"]["selector"]["matchLabels"], labels)
    assert matches(pdb["spec"]["selector"]["matchLabels"], labels)
    port_names = {p["name"] for p in CONTAINER["ports"]}
    assert all(
        p["targetPort"] in port_names or p["targetPort"] in {pp["containerPort"] for pp in CONTAINER["ports"]}
        for p in service["spec"]["ports"]
    )


def test_every_replica_can_own_an_input_partition() -> None:
    # A replica beyond the input partitions gets no viewers, yet still folds the whole item-signal log.
    assert STS["spec"]["replicas"] <= int(CONFIG["STREAMREC_PARTITIONS"])


def test_pdb_leaves_a_worker_running() -> None:
    spec, replicas = OBJ["PodDisruptionBudget"]["spec"], STS["spec"]["replicas"]
    if "maxUnavailable" in spec:
        assert 1 <= spec["maxUnavailable"] < replicas
    else:
        assert 1 <= spec["minAvailable"] < replicas


def test_secrets_come_from_an_optional_secret_and_are_secret_settings() -> None:
    from_secrets = {
        e["name"]: e["valueFrom"]["secretKeyRef"] for e in CONTAINER["env"] if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert set(from_secrets) == {"STREAMREC_SASL_USERNAME", "STREAMREC_SASL_PASSWORD", "STREAMREC_HTTP_TOKEN"}
    assert all(ref["optional"] is True and ref["name"] == "streamrec-secrets" for ref in from_secrets.values())
    assert not set(from_secrets) & set(CONFIG), "a secret in the ConfigMap"
    for name in ("sasl_password", "http_token"):  # masked in reprs and dumps
        assert "SecretStr" in str(Settings.model_fields[name].annotation)
