"""What the index must hold for an item, computed from the documented rules (docs/indexer.md)
alone: the tests' own oracle, independent of ``consumers.indexer.documents``.

Written from the documentation, deliberately without the indexer's fast paths, so a bug in the
indexer's conversion cannot hide in a test that reuses it.
"""

from __future__ import annotations

import base64
import hashlib
from decimal import Context, Decimal
from typing import Any

MAX_ID_BYTES = 512
_TWO_53 = 2**53
_EXACT = Context(prec=100)
"""Room for DynamoDB's 38 significant digits at any exponent: no rounding anywhere here."""


def expected_id(keys: dict[str, dict[str, Any]]) -> str:
    """The documented ``_id`` of a primary key."""
    parts = []
    for name in sorted(keys):
        ((tag, value),) = keys[name].items()
        if tag == "S":
            parts.append(value.replace("%", "%25").replace("|", "%7C").replace("~", "%7E"))
        elif tag == "N":
            parts.append(_canonical(Decimal(value)))
        else:
            parts.append(base64.urlsafe_b64encode(value).decode())
    text = "|".join(parts)
    if len(text.encode()) <= MAX_ID_BYTES:
        return text
    return "~sha256:" + hashlib.sha256(text.encode()).hexdigest()


def expected_source(item: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The documented ``_source`` of an item image: top-level names by the renaming rule."""
    return {_top_level_name(name): _value(value) for name, value in item.items()}


def _top_level_name(name: str) -> str:
    """Kept, unless it starts with ``_``, ``~`` or ``.``, holds ``..``, is empty or white
    space, or is ``ddb``: then ``~`` + the name with ``%``, ``.`` and white space as
    percent-encoded UTF-8."""
    if name and name[0] not in "_~." and ".." not in name and name.strip() and name != "ddb":
        return name
    escaped = ""
    for char in name:
        if char in "%." or char.isspace():
            escaped += "".join(f"%{byte:02X}" for byte in char.encode())
        else:
            escaped += char
    return "~" + escaped


def _map(members: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {name: _value(value) for name, value in members.items()}


def _value(typed: dict[str, Any]) -> Any:
    ((tag, value),) = typed.items()
    if tag == "S" or tag == "BOOL":
        return value
    if tag == "NULL":
        return None
    if tag == "N":
        return _number(value)
    if tag == "B":
        return base64.b64encode(value).decode()
    if tag == "M":
        return _map(value)
    if tag == "L":
        return [_value(member) for member in value]
    if tag == "SS":
        return sorted(value)
    if tag == "NS":
        return [_number(member) for member in sorted(value, key=Decimal)]
    if tag == "BS":
        return [base64.b64encode(member).decode() for member in sorted(value)]
    raise AssertionError(f"not a DynamoDB type: {tag}")


def _number(text: str) -> int | float | str:
    """Rule 1: integers within 2**53 as integers; 2: decimals a double names exactly as floats;
    3: anything else as the canonical decimal string."""
    exact = Decimal(text)
    if exact == exact.to_integral_value():
        if abs(exact) <= _TWO_53:
            return int(exact)
        return _canonical(exact)
    double = float(exact)
    if Decimal(repr(double)) == exact:
        return double
    return _canonical(exact)


def _canonical(value: Decimal) -> str:
    """Plain decimal digits, no exponent, no trailing fractional zeros, no ``-0``."""
    text = format(value.normalize(_EXACT), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text
