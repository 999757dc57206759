"""DynamoDB typed JSON <-> text, lossless: the format of AWS's DynamoDB JSON export.

``dumps_item`` is canonical (sorted keys, compact, binary as base64, UTF-8 kept as is), so the
same item always gives the same text. It trusts its input, because it sits on the bridge's hot
path and boto3 only hands it well-formed items; ``validate_item`` is the check for untrusted
items, and ``loads_item`` checks everything it reads.
"""

from __future__ import annotations

import base64
import binascii
import importlib
import json
import re
from decimal import Decimal
from typing import Any

from bridge.contract.errors import ContractError
from bridge.contract.event import Item

MAX_SIGNIFICANT_DIGITS = 38
MIN_ADJUSTED_EXPONENT = -130
"""Smallest magnitude DynamoDB stores: 1E-130."""
MAX_ADJUSTED_EXPONENT = 125
"""Largest magnitude DynamoDB stores: 9.9999999999999999999999999999999999999E+125."""


def _base64(value: object) -> str:
    # orjson calls back here for every B and BS member: binascii directly (what b64encode
    # calls) saves a Python frame each time.
    if type(value) is bytes or isinstance(value, bytes | bytearray | memoryview):
        return binascii.b2a_base64(value, newline=False).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not a DynamoDB value")


# orjson (a dependency) writes byte-identical text about five times faster (a test holds the two
# to the same output); the standard library stays the fallback where no orjson wheel exists.
_orjson: Any
try:
    _orjson = importlib.import_module("orjson")
except ImportError:
    _orjson = None

_stdlib_encoder = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_base64
)

# Decimal() alone would also take "NaN", "Infinity", "1_000" and surrounding blanks.
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


class _MalformedError(Exception):
    """A malformed value somewhere below; ``path`` grows as it travels up to the item."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path: list[str] = []


def _path_text(segments: list[str]) -> str:
    text = ""
    for segment in reversed(segments):
        text += segment if segment.startswith("[") or not text else "." + segment
    return text or "<item>"


def _contract_error(error: _MalformedError) -> ContractError:
    return ContractError(f"malformed attribute {_path_text(error.path)}: {error.reason}")


def dumps_item(item: Item) -> str:
    """The canonical DynamoDB JSON text of ``item``: sorted keys, compact, B and BS as base64."""
    try:
        if _orjson is None:
            return _stdlib_encoder.encode(item)
        text: bytes = _orjson.dumps(item, default=_base64, option=_orjson.OPT_SORT_KEYS)
        return text.decode("utf-8")
    except (TypeError, ValueError, RecursionError) as error:
        raise ContractError(f"item is not DynamoDB typed JSON: {error}") from error


def dumps_item_utf8(item: Item) -> bytes:
    """``dumps_item(item).encode("utf-8")``, without the detour through ``str`` under orjson."""
    try:
        if _orjson is None:
            return _stdlib_encoder.encode(item).encode("utf-8")
        text: bytes = _orjson.dumps(item, default=_base64, option=_orjson.OPT_SORT_KEYS)
        return text
    except (TypeError, ValueError, RecursionError) as error:
        raise ContractError(f"item is not DynamoDB typed JSON: {error}") from error


def _stdlib_dumps_item(item: Item) -> str:
    """``dumps_item`` without orjson: the reference the accelerated path must equal."""
    return _stdlib_encoder.encode(item)


def loads_item(text: str) -> Item:
    """The item ``dumps_item`` wrote: B and BS back to bytes, every value checked."""
    try:
        document = json.loads(text) if _orjson is None else _orjson.loads(text)
    except (ValueError, RecursionError) as error:
        raise ContractError(f"item is not JSON: {error}") from error
    try:
        return _item(document, True)
    except _MalformedError as error:
        raise _contract_error(error) from None
    except RecursionError as error:
        raise ContractError("item is nested too deeply") from error


def loads_item_unvalidated(text: str) -> Item:
    """The item ``dumps_item`` wrote, B and BS back to bytes, its values *not* checked.

    The trusted path, for a caller that checks every value it uses while converting it (the
    indexer's plain-JSON conversion). Text that may hold a B or BS tag takes the full
    ``loads_item`` walk, which converts them: a JSON name is ``B`` only if the text holds
    ``"B"`` or a ``\\u`` escape, so text without either has no binary to convert.
    """
    if '"B"' in text or '"BS"' in text or "\\u" in text:
        return loads_item(text)
    try:
        document = json.loads(text) if _orjson is None else _orjson.loads(text)
    except (ValueError, RecursionError) as error:
        raise ContractError(f"item is not JSON: {error}") from error
    if type(document) is not dict:
        raise ContractError(
            f"malformed attribute <item>: an item is a mapping of names to typed values, not "
            f"{_kind(document)}"
        )
    return document


def validate_item(item: Item) -> None:
    """Raise :class:`ContractError` naming the attribute path of the first malformed value."""
    try:
        _item(item, False)
    except _MalformedError as error:
        raise _contract_error(error) from None
    except RecursionError as error:
        raise ContractError("item is nested too deeply") from error


def normalize_number(n: str) -> str:
    """The canonical positional decimal of a DynamoDB number: ``"1E+3"`` -> ``"1000"``.

    No exponent, no leading or trailing zeros, no ``+``, ``-0`` -> ``0``. Raises
    :class:`ContractError` unless DynamoDB would store it: at most 38 significant digits and a
    magnitude of 1E-130 .. 9.99..E+125 (or zero).
    """
    if not isinstance(n, str) or _NUMBER.fullmatch(n) is None:
        raise ContractError(f"not a number: {n!r}")
    sign, digit_tuple, exponent = Decimal(n).as_tuple()
    assert isinstance(exponent, int)  # the pattern admits no NaN or Infinity
    digits = "".join(map(str, digit_tuple)).lstrip("0")
    if not digits:
        return "0"
    stripped = digits.rstrip("0")
    exponent += len(digits) - len(stripped)
    digits = stripped
    if len(digits) > MAX_SIGNIFICANT_DIGITS:
        raise ContractError(
            f"number {n!r} has {len(digits)} significant digits; DynamoDB keeps at most "
            f"{MAX_SIGNIFICANT_DIGITS}"
        )
    adjusted = exponent + len(digits) - 1
    if not MIN_ADJUSTED_EXPONENT <= adjusted <= MAX_ADJUSTED_EXPONENT:
        raise ContractError(
            f"number {n!r} is outside DynamoDB's range 1E-130 .. 9.9999999999999999999999999999999"
            "999999E+125"
        )
    if exponent >= 0:
        text = digits + "0" * exponent
    elif len(digits) > -exponent:
        text = digits[:exponent] + "." + digits[exponent:]
    else:
        text = "0." + "0" * (-exponent - len(digits)) + digits
    return "-" + text if sign else text


# One walker checks an item; ``from_json`` says whether B/BS hold base64 text to turn into
# bytes (read from JSON) or bytes already (built in Python). It runs once per image the indexer
# decodes, so the common cases are tested first and exact ``type()`` checks replace isinstance.

_TAGS = ("S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS")
_SHORT_NUMBER_CHARS = MAX_SIGNIFICANT_DIGITS
"""A number this short without an exponent is always within DynamoDB's digits and range."""
_POSITIONAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")


def _item(item: Any, from_json: bool) -> Item:
    if type(item) is not dict:
        raise _MalformedError(f"an item is a mapping of names to typed values, not {_kind(item)}")
    for name, value in item.items():
        try:
            if type(name) is not str:
                raise _MalformedError(f"attribute names are strings, not {_kind(name)}")
            _value(value, from_json)
        except _MalformedError as error:
            error.path.append(str(name))
            raise
    return item


def _value(value: Any, from_json: bool) -> None:
    """Check ``value``; from JSON, turn base64 text into bytes in place (JSON dicts are ours)."""
    if type(value) is not dict or len(value) != 1:
        raise _MalformedError(
            f"a typed value is a mapping with exactly one type tag, not {value!r:.80}"
        )
    for tag, payload in value.items():
        if tag == "S":
            if type(payload) is not str:
                raise _MalformedError(f"S holds a string, not {_kind(payload)}")
        elif tag == "N":
            _number(payload)
        elif tag == "M":
            _item(payload, from_json)
        elif tag == "L":
            _list(payload, from_json)
        elif tag == "BOOL":
            if type(payload) is not bool:
                raise _MalformedError(f"BOOL holds true or false, not {_kind(payload)}")
        elif tag == "NULL":
            if payload is not True:
                raise _MalformedError(f"NULL holds true, not {_kind(payload)}")
        elif tag == "B":
            binary = _binary(payload, from_json)
        elif tag == "SS":
            _unique(_set(payload, str, "SS holds strings"))
        elif tag == "NS":
            members = _set(payload, str, "NS holds number strings")
            _unique([_normalized(member) for member in members])
        elif tag == "BS":
            binaries = [_binary(member, from_json) for member in _set(payload, None, "BS")]
            _unique(binaries)
        else:
            raise _MalformedError(f"unknown type tag {tag!r:.40}; expected one of {_TAGS}")
    if from_json:
        if tag == "B":
            value["B"] = binary
        elif tag == "BS":
            value["BS"] = binaries


def _list(payload: Any, from_json: bool) -> None:
    if type(payload) is not list:
        raise _MalformedError(f"L holds a list, not {_kind(payload)}")
    for index, element in enumerate(payload):
        try:
            _value(element, from_json)
        except _MalformedError as error:
            error.path.append(f"[{index}]")
            raise


def _number(payload: Any) -> str:
    """``payload`` checked as a DynamoDB number (kept as written)."""
    if (
        type(payload) is str
        and len(payload) <= _SHORT_NUMBER_CHARS
        and _POSITIONAL.fullmatch(payload) is not None
    ):
        return payload
    _normalized(payload)
    return payload  # type: ignore[no-any-return]


def _normalized(payload: Any) -> str:
    try:
        return normalize_number(payload)
    except ContractError as error:
        raise _MalformedError(str(error)) from None


def _binary(payload: Any, from_json: bool) -> bytes:
    if not from_json:
        if type(payload) is not bytes:
            raise _MalformedError(f"B holds bytes, not {_kind(payload)}")
        return payload
    if type(payload) is not str:
        raise _MalformedError(f"B holds base64 text, not {_kind(payload)}")
    try:
        return base64.b64decode(payload, validate=True)
    except binascii.Error:
        raise _MalformedError(f"B holds base64 text, not {payload!r:.80}") from None


def _set(payload: Any, member_type: type | None, rule: str) -> list[Any]:
    if type(payload) is not list:
        raise _MalformedError(f"{rule} holds a list, not {_kind(payload)}")
    if not payload:
        raise _MalformedError(f"{rule} is empty; DynamoDB has no empty sets")
    if member_type is not None:
        for member in payload:
            if type(member) is not member_type:
                raise _MalformedError(f"{rule}, not {_kind(member)}")
    return payload


def _unique(members: list[Any]) -> None:
    if len(set(members)) != len(members):
        raise _MalformedError("a set holds each member once")


def _kind(value: Any) -> str:
    return f"{type(value).__name__} {value!r:.80}"
