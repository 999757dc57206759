"""Every raw response a boto3 client receives, checked against botocore's service model before
botocore parses it: botocore silently drops members it does not know and accepts wrong types
in places, so "parsing succeeded" alone would let a misspelled member through.

``watch(client)`` registers the check on a client; ``problems`` collects what it found.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

import orjson
from botocore.model import OperationModel, Shape  # noqa: TID251 - the test checks botocore's model

ERRORS_ANY_OPERATION = frozenset({"ValidationException", "ThrottlingException"})
"""Errors AWS's front end sends for any operation, whatever the operation's model lists."""
EXTRA_ERRORS = {
    # The documented 10 calls/s limit of DescribeStream has no modeled error.
    "DescribeStream": frozenset({"LimitExceededException"}),
    # DynamoDB's own (lease tables): injected throttling.
    "PutItem": frozenset({"ProvisionedThroughputExceededException"}),
}


@dataclass
class ShapeWatch:
    problems: list[str] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)

    def __call__(
        self, operation_model: OperationModel, response_dict: dict[str, Any], **_: Any
    ) -> None:
        name = operation_model.name
        self.checked[name] = self.checked.get(name, 0) + 1
        body = orjson.loads(response_dict["body"]) if response_dict["body"] else {}
        if response_dict["status_code"] == 200:
            # DynamoDB's own answers break numeric minimums (AWS sends 0 for some "positive"
            # counters), so those are checked for the Streams API only.
            strict = operation_model.service_model.service_name == "dynamodbstreams"
            if operation_model.output_shape is not None:
                self.problems += problems(operation_model.output_shape, body, name, strict=strict)
            return
        code = str(body.get("__type", "")).rpartition("#")[2]
        allowed = {shape.name for shape in operation_model.error_shapes}
        allowed |= ERRORS_ANY_OPERATION | EXTRA_ERRORS.get(name, frozenset())
        if code not in allowed:
            self.problems.append(f"{name}: error {code!r} is not one the model allows")
        if not isinstance(body.get("message"), str):
            self.problems.append(f"{name}: error {code!r} without a message")


def watch(client: Any, checker: ShapeWatch | None = None) -> ShapeWatch:
    """Check every response ``client`` receives, into ``checker`` (a new one by default)."""
    checker = checker if checker is not None else ShapeWatch()
    client.meta.events.register("before-parse", checker)
    return checker


def problems(shape: Shape, value: Any, path: str, *, strict: bool = True) -> list[str]:
    """What in ``value`` (wire JSON) does not match ``shape``."""
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            return [f"{path}: expected an object, got {type(value).__name__}"]
        found = []
        members = shape.members  # type: ignore[attr-defined]
        for name in value:
            if name not in members:
                found.append(f"{path}: unknown member {name!r}")
        for name in shape.metadata.get("required", []):
            if name not in value:
                found.append(f"{path}: missing required member {name!r}")
        for name, member in members.items():
            if name in value:
                found += problems(member, value[name], f"{path}.{name}", strict=strict)
        return found
    if kind == "list":
        if not isinstance(value, list):
            return [f"{path}: expected a list"]
        member = shape.member  # type: ignore[attr-defined]
        return [
            p
            for i, item in enumerate(value)
            for p in problems(member, item, f"{path}[{i}]", strict=strict)
        ]
    if kind == "map":
        if not isinstance(value, dict):
            return [f"{path}: expected a map"]
        inner = shape.value  # type: ignore[attr-defined]
        return [
            p for k, v in value.items() for p in problems(inner, v, f"{path}[{k}]", strict=strict)
        ]
    return _scalar(shape, value, path, strict)


def _scalar(shape: Shape, value: Any, path: str, strict: bool) -> list[str]:
    kind = shape.type_name
    metadata = shape.metadata
    if kind == "string":
        if not isinstance(value, str):
            return [f"{path}: expected a string, got {value!r}"]
        enum = getattr(shape, "enum", None)
        if enum and value not in enum:
            return [f"{path}: {value!r} is not one of {enum}"]
        if "min" in metadata and len(value) < metadata["min"]:
            return [f"{path}: {value!r} is shorter than {metadata['min']}"]
        if "max" in metadata and len(value) > metadata["max"]:
            return [f"{path}: {len(value)} characters, more than {metadata['max']}"]
        return []
    if kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            return [f"{path}: expected an integer, got {value!r}"]
        if strict and "min" in metadata and value < metadata["min"]:
            return [f"{path}: {value} is below {metadata['min']}"]
        return []
    if kind == "boolean":
        return [] if isinstance(value, bool) else [f"{path}: expected a boolean"]
    if kind == "timestamp":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return [] if ok else [f"{path}: expected epoch seconds, got {value!r}"]
    if kind == "blob":
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, TypeError, ValueError):
            return [f"{path}: not base64"]
        return []
    return [f"{path}: unchecked type {kind}"]
