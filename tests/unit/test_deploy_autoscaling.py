"""The autoscaling manifests: valid objects, metrics the processes really export, bounds and
scale-down pace that keep leases and partitions from moving back and forth, and grace periods
long enough for a clean stop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bridge.runtime.settings import Settings
from tests.kube import (
    declared_metrics,
    documents,
    grace_needed_s,
    referenced_metrics,
    validate,
)

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
AUTOSCALING = DEPLOY / "autoscaling"
KEDA = documents((AUTOSCALING / "keda.yaml").read_text())
HPA = documents((AUTOSCALING / "hpa.yaml").read_text())
ADAPTER = yaml.safe_load((AUTOSCALING / "prometheus-adapter-values.yaml").read_text())


def by_name(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in docs}


def base_settings() -> Settings:
    (cm,) = documents((DEPLOY / "configmap.yaml").read_text())
    return Settings(**yaml.safe_load(cm["data"]["dynabridge.yaml"]))


@pytest.mark.parametrize("doc", KEDA + HPA, ids=lambda d: f"{d['kind']}:{d['metadata']['name']}")
def test_autoscaling_objects_are_valid(doc: dict[str, Any]) -> None:
    validate(doc)


def test_the_schema_check_would_catch_a_misspelt_field() -> None:
    bad = yaml.safe_load(yaml.safe_dump(KEDA[0]))
    bad["spec"]["maxReplicas"] = 3  # HPA's spelling, not KEDA's
    with pytest.raises(AssertionError, match="maxReplicas"):
        validate(bad)
    bad = yaml.safe_load(yaml.safe_dump(KEDA[1]))
    bad["spec"]["triggers"][0]["metadata"]["lagTreshold"] = "5"
    with pytest.raises(AssertionError, match="lagTreshold"):
        validate(bad)
    bad = yaml.safe_load(yaml.safe_dump(KEDA[1]))
    bad["spec"]["triggers"][0]["metadata"]["lagThreshold"] = 5  # metadata values are strings
    with pytest.raises(AssertionError):
        validate(bad)


def test_every_metric_a_query_names_is_exported() -> None:
    queries = [
        t["metadata"]["query"]
        for d in KEDA
        for t in d["spec"]["triggers"]
        if "query" in t["metadata"]
    ]
    rules = ADAPTER["rules"]["external"]
    queries += [rule["seriesQuery"] for rule in rules]
    queries += [rule["name"]["matches"] for rule in rules]
    named = set().union(*(referenced_metrics(q) for q in queries))
    assert named >= {"dynabridge_bridge_desired_workers", "dynabridge_indexer_demand_consumers"}
    assert named <= declared_metrics(), named - declared_metrics()


def test_every_hpa_metric_is_served_by_the_adapter() -> None:
    served = {rule["name"]["as"] for rule in ADAPTER["rules"]["external"]}
    for hpa in HPA:
        (metric,) = hpa["spec"]["metrics"]
        assert metric["external"]["metric"]["name"] in served


def test_scale_targets_bounds_and_scale_down_pace() -> None:
    settings = base_settings()
    partitions = settings.topics.partitions * len(settings.indexer_tables())
    keda, hpa = by_name(KEDA), by_name(HPA)
    for name in ("dynabridge-bridge", "dynabridge-indexer"):
        assert keda[name]["spec"]["scaleTargetRef"]["name"] == name
        assert hpa[name]["spec"]["scaleTargetRef"]["name"] == name
        for behavior in (
            keda[name]["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"],
            hpa[name]["spec"]["behavior"],
        ):
            down = behavior["scaleDown"]
            # At most one pod less per period, after a long window: a stopping bridge releases
            # its leases and the others take them; a leaving indexer moves its partitions.
            assert down["stabilizationWindowSeconds"] >= 300
            assert down["policies"] == [{"type": "Pods", "value": 1, "periodSeconds": 120}]
    (kafka,) = keda["dynabridge-indexer"]["spec"]["triggers"]
    assert kafka["type"] == "kafka"
    assert kafka["metadata"]["allowIdleConsumers"] == "false"  # never more than the partitions
    assert kafka["metadata"]["consumerGroup"] == settings.indexer.group_id
    assert kafka["metadata"]["bootstrapServers"] == settings.kafka.bootstrap_servers
    assert keda["dynabridge-indexer"]["spec"]["maxReplicaCount"] <= partitions
    assert hpa["dynabridge-indexer"]["spec"]["maxReplicas"] <= partitions
    (prom,) = keda["dynabridge-bridge"]["spec"]["triggers"]
    assert (prom["type"], prom["metricType"], prom["metadata"]["threshold"]) == (
        "prometheus", "AverageValue", "1",
    )  # fmt: skip


def test_grace_periods_cover_a_clean_stop() -> None:
    settings = base_settings()
    for process in ("bridge", "indexer"):
        (deployment, _budget) = documents((DEPLOY / f"{process}.yaml").read_text())
        grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert grace >= grace_needed_s(process, settings), process
