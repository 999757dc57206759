"""The Kubernetes manifests validate against the API schemas and keep the operational promises."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

K8S_DIR = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
K8S_VERSION = "1.30.0"


def _documents() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted(K8S_DIR.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((path.name, doc))
    return docs


DOCS = _documents()


def test_manifests_exist() -> None:
    kinds = sorted({doc["kind"] for _, doc in DOCS})
    assert kinds == ["ConfigMap", "Deployment", "PodDisruptionBudget", "Secret", "ServiceAccount"]


@pytest.mark.parametrize(("name", "doc"), DOCS, ids=[f"{n}:{d['kind']}" for n, d in DOCS])
def test_manifest_is_valid_strict(name: str, doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def _deployments() -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for _, d in DOCS if d["kind"] == "Deployment"}


def test_both_processes_are_separate_deployments_with_probes_and_scrape() -> None:
    deployments = _deployments()
    assert set(deployments) == {"dynabridge-bridge", "dynabridge-indexer"}
    for dep in deployments.values():
        pod = dep["spec"]["template"]
        assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
        (container,) = pod["spec"]["containers"]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["resources"]["requests"]["cpu"]
        mounts = {m["name"] for m in container["volumeMounts"]}
        assert "config" in mounts
        assert container["envFrom"][0]["secretRef"]["name"] == "dynabridge-secrets"


def test_every_deployment_has_a_disruption_budget() -> None:
    budgets = {
        tuple(sorted(d["spec"]["selector"]["matchLabels"].items()))
        for _, d in DOCS
        if d["kind"] == "PodDisruptionBudget"
    }
    for dep in _deployments().values():
        selector = tuple(sorted(dep["spec"]["selector"]["matchLabels"].items()))
        assert selector in budgets


def test_configmap_holds_a_loadable_config() -> None:
    from bridge.runtime.settings import Settings

    (cm,) = [d for _, d in DOCS if d["kind"] == "ConfigMap"]
    data = yaml.safe_load(cm["data"]["dynabridge.yaml"])
    settings = Settings(**data)
    assert settings.bridge.tables
    ports = {"dynabridge-bridge": settings.metrics.port_of("bridge"),
             "dynabridge-indexer": settings.metrics.port_of("indexer")}  # fmt: skip
    for name, dep in _deployments().items():
        (container,) = dep["spec"]["template"]["spec"]["containers"]
        declared = {p["containerPort"] for p in container["ports"] if p["name"] == "metrics"}
        annotations = dep["spec"]["template"]["metadata"]["annotations"]
        assert declared == {ports[name]}, f"{name} serves metrics on {ports[name]}"
        assert annotations["prometheus.io/port"] == str(ports[name])
