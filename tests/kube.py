"""Offline checks of Kubernetes objects: core kinds against the API schemas (kubernetes-validate),
KEDA ScaledObjects and ServiceMonitors against their CRDs' own OpenAPI schemas (vendored in
tests/data, see its README), and the metric names autoscaling refers to against the ones the
processes declare.

A CRD's structural schema is checked as the API server would with strict field validation:
unknown fields are errors. Its CEL rules (``x-kubernetes-validations``) cannot be run here; the
one KEDA's ScaledObject has (min <= max replicas) is checked by hand.
"""

from __future__ import annotations

import copy
import functools
import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

DATA = Path(__file__).resolve().parent / "data"
K8S_VERSION = "1.30.0"
CRDS = {
    ("keda.sh/v1alpha1", "ScaledObject"): "keda.sh_scaledobjects.yaml",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "monitoring.coreos.com_servicemonitors.yaml",
}

# Trigger metadata keys KEDA v2.20.2 reads (pkg/scalers/{kafka,prometheus}_scaler.go): KEDA ignores
# a misspelt key silently, so the check must know the real ones.
KEDA_METADATA = {
    "kafka": {
        "bootstrapServers", "consumerGroup", "topic", "partitionLimitation", "lagThreshold",
        "activationLagThreshold", "offsetResetPolicy", "allowIdleConsumers",
        "excludePersistentLag", "scaleToZeroOnInvalidOffset", "limitToPartitionsWithLag",
        "ensureEvenDistributionOfPartitions", "version", "tls", "unsafeSsl", "sasl",
        "saslTokenProvider", "awsRegion",
    },
    "prometheus": {
        "serverAddress", "query", "queryParameters", "threshold", "activationThreshold",
        "namespace", "customHeaders", "ignoreNullValues", "unsafeSsl", "awsRegion", "timeout",
        "identityOwner",
    },
}  # fmt: skip
KEDA_REQUIRED = {
    "kafka": {"bootstrapServers", "consumerGroup"},
    "prometheus": {"serverAddress", "query", "threshold"},
}


def documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def validate(doc: dict[str, Any]) -> None:
    """Raise on an invalid object: core kinds strictly, the two CRD kinds by their schema."""
    key = (doc.get("apiVersion"), doc.get("kind"))
    if key in CRDS:
        errors = sorted(_crd_validator(CRDS[key]).iter_errors(doc), key=str)
        if errors:
            where = "/".join(str(p) for p in errors[0].absolute_path)
            raise AssertionError(f"{doc['kind']} {doc['metadata']['name']}: {where}: {errors[0]}")
        if doc["kind"] == "ScaledObject":
            _check_scaled_object(doc)
        return
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def _check_scaled_object(doc: dict[str, Any]) -> None:
    spec = doc["spec"]
    if spec.get("minReplicaCount", 0) > spec.get("maxReplicaCount", 100):
        raise AssertionError("minReplicaCount must be less than or equal to maxReplicaCount")
    for trigger in spec["triggers"]:
        known = KEDA_METADATA.get(trigger["type"])
        if known is None:
            raise AssertionError(f"trigger type {trigger['type']} is not checked here")
        keys = set(trigger.get("metadata", {}))
        if unknown := keys - known:
            raise AssertionError(f"{trigger['type']} trigger: unknown metadata {sorted(unknown)}")
        if missing := KEDA_REQUIRED[trigger["type"]] - keys:
            raise AssertionError(f"{trigger['type']} trigger: missing {sorted(missing)}")


@functools.cache
def _crd_validator(name: str) -> jsonschema.protocols.Validator:
    crd = yaml.safe_load((DATA / name).read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v.get("storage")]
    schema = _strict(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    return cls(schema)


def _strict(node: Any) -> Any:
    """OpenAPI v3 structural schema -> JSON schema that refuses unknown fields."""
    if isinstance(node, list):
        return [_strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {k: _strict(v) for k, v in node.items() if k != "x-kubernetes-validations"}
    if node.pop("x-kubernetes-int-or-string", False) and "anyOf" not in node:
        node["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.pop("nullable", False) and "type" in node:
        node["type"] = [node["type"], "null"]
    preserve = node.pop("x-kubernetes-preserve-unknown-fields", False)
    if "properties" in node and "additionalProperties" not in node and not preserve:
        node["additionalProperties"] = False
    return node


@functools.cache
def declared_metrics() -> frozenset[str]:
    """Every metric name the two processes export, as Prometheus scrapes them (with suffixes)."""
    from bridge.metrics import BridgeMetrics
    from consumers.indexer.metrics import IndexerMetrics

    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
    names: set[str] = set()
    for metrics in (BridgeMetrics(), IndexerMetrics()):
        for family in metrics.registry.collect():
            names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
    return frozenset(names)


METRIC = re.compile(r"\bdynabridge_[a-z0-9_]+\b")


def referenced_metrics(text: str) -> set[str]:
    """The dynabridge metric names a query, a rule or a whole manifest mentions."""
    return set(METRIC.findall(text))


SHUTDOWN_MARGIN_S = 10.0
"""Final checkpoints and releases (bridge); the last commit and leaving the group (indexer)."""


def grace_needed_s(process: str, settings: Any) -> float:
    """The terminationGracePeriodSeconds a process needs to stop cleanly on SIGTERM (leases
    released, group left) under ``settings`` (docs/deploy.md#graceful-shutdown)."""
    from bridge.lease_keeper import STOP_TIMEOUT_S

    if process == "bridge":
        return float(settings.bridge.shutdown_timeout_s + STOP_TIMEOUT_S + SHUTDOWN_MARGIN_S)
    return float(
        settings.indexer.shutdown_timeout_s + settings.search.request_timeout_s + SHUTDOWN_MARGIN_S
    )
