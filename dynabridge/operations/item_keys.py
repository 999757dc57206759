"""An operator's ``--key`` (plain JSON or DynamoDB typed JSON) as a table's canonical primary key.

Plain values take their type from the table's key schema (``{"pk": "a", "sk": 3}``); typed
values (``{"pk": {"S": "a"}}``) must agree with it. The result equals what the bridge keys by.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass

from bridge.contract import AttributeValue, ContractError, Item, canonical_keys, normalize_number


class KeyInputError(ValueError):
    """The key given cannot be a primary key of the table; the message says what to pass."""


class ScalarType(enum.StrEnum):
    S = "S"
    N = "N"
    B = "B"


@dataclass(frozen=True, slots=True)
class KeyAttribute:
    name: str
    type: ScalarType


@dataclass(frozen=True, slots=True)
class KeySchema:
    """A table's primary key: the hash attribute, then the range attribute if any."""

    attributes: tuple[KeyAttribute, ...]

    def describe(self) -> str:
        return ", ".join(f"{a.name} ({a.type.value})" for a in self.attributes)

    def keys_of(self, item: Item) -> Item:
        """The key attributes of a full item image."""
        return {a.name: item[a.name] for a in self.attributes}


class _Number(str):
    """A JSON number's text exactly as written (no float rounding of key digits)."""

    __slots__ = ()


def parse_key(text: str, schema: KeySchema) -> Item:
    """``text`` as the canonical key of a table with ``schema``; raises :class:`KeyInputError`."""
    example = _example(schema)
    try:
        given = json.loads(text, parse_int=_Number, parse_float=_Number)
    except json.JSONDecodeError as error:
        raise KeyInputError(
            f"--key is not valid JSON ({error}); pass e.g. --key '{example}'"
        ) from None
    if not isinstance(given, dict):
        raise KeyInputError(f"--key must be a JSON object such as '{example}'")
    names = {a.name for a in schema.attributes}
    missing = [a.name for a in schema.attributes if a.name not in given]
    extra = sorted(set(given) - names)
    if missing or extra:
        problems = [f"missing {', '.join(missing)}"] if missing else []
        problems += [f"not key attributes: {', '.join(extra)}"] if extra else []
        raise KeyInputError(
            f"--key must name exactly the table's key attributes {schema.describe()} "
            f"({'; '.join(problems)}); e.g. --key '{example}'"
        )
    keys: Item = {a.name: _value(a, given[a.name]) for a in schema.attributes}
    try:
        return canonical_keys(keys)
    except ContractError as error:
        raise KeyInputError(f"--key: {error}") from None


def _value(attribute: KeyAttribute, given: object) -> AttributeValue:
    if isinstance(given, dict):
        return _typed(attribute, given)
    kind = attribute.type
    if kind is ScalarType.S and isinstance(given, str) and not isinstance(given, _Number):
        return {"S": given}
    if kind is ScalarType.N and isinstance(given, str):  # a JSON number, or digits in a string
        return {"N": _number(attribute, given)}
    if kind is ScalarType.B and isinstance(given, str) and not isinstance(given, _Number):
        return {"B": _binary(attribute, given)}
    raise KeyInputError(
        f"--key attribute {attribute.name} is {kind.value} in the table, so give "
        f"{_hint(kind)}, not {json.dumps(given)}"
    )


def _typed(attribute: KeyAttribute, given: Mapping[object, object]) -> AttributeValue:
    if len(given) != 1 or next(iter(given)) not in ScalarType.__members__:
        raise KeyInputError(
            f"--key attribute {attribute.name}: {json.dumps(given)} is not a typed S, N or B value"
        )
    ((tag, payload),) = given.items()
    if tag != attribute.type.value:
        raise KeyInputError(
            f"--key attribute {attribute.name} is {attribute.type.value} in the table, not {tag}"
        )
    if not isinstance(payload, str) or (tag != "N" and isinstance(payload, _Number)):
        raise KeyInputError(f"--key attribute {attribute.name}: a typed {tag} value is a string")
    if tag == "N":
        return {"N": _number(attribute, payload)}
    if tag == "B":
        return {"B": _binary(attribute, payload)}
    return {"S": payload}


def _number(attribute: KeyAttribute, text: str) -> str:
    try:
        return normalize_number(str(text))
    except ContractError as error:
        raise KeyInputError(f"--key attribute {attribute.name}: {error}") from None


def _binary(attribute: KeyAttribute, text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise KeyInputError(
            f"--key attribute {attribute.name} is binary: give it as base64, not {text!r}"
        ) from None


def _hint(kind: ScalarType) -> str:
    return {"S": "a JSON string", "N": "a JSON number", "B": "a base64 string"}[kind.value]


def _example(schema: KeySchema) -> str:
    samples = {ScalarType.S: '"a"', ScalarType.N: "3", ScalarType.B: '"AQI="'}
    inner = ", ".join(f'"{a.name}": {samples[a.type]}' for a in schema.attributes)
    return "{" + inner + "}"
