"""DynamoDB numbers as JSON: 38 significant digits, never a digit silently lost."""

from __future__ import annotations

from decimal import Decimal

from bridge.contract import normalize_number

MAX_SAFE_INTEGER = 2**53
"""Beyond this, integers are not all representable by a double (or by JavaScript readers)."""


def plain_number(text: str) -> int | float | str:
    """A DynamoDB number as JSON without losing a digit.

    - an integer with ``|n| <= 2**53`` -> a JSON integer;
    - a non-integer whose shortest double repr names the same decimal (``0.1``, ``19.99``,
      ``1e-130``) -> a JSON float: any reader parsing it as a double gets back exactly these
      digits;
    - anything else (larger integers, 17+ significant digits) -> the canonical decimal
      string, e.g. ``"9007199254740993"``, which the engines coerce into numeric fields.
    """
    if len(text) <= 15 and text.isdigit() and text.isascii():
        return int(text)  # the most common number: a small non-negative integer
    if len(text) <= 16 and text.isascii():
        # Fast path for plain ``[-]digits[.digits]`` with at most 15 digits: a double holds
        # any decimal of 15 significant digits exactly enough to give the same digits back
        # (DBL_DIG), and 15-digit integers are below 2**53.
        body = text[1:] if text[:1] == "-" else text
        if body.isdigit():
            if len(body) <= 15:
                return int(text)
        else:
            whole, dot, fraction = body.partition(".")
            if dot and whole.isdigit() and fraction.isdigit():
                double = float(text)
                return int(double) if double.is_integer() else double
    canonical = normalize_number(text)
    value = Decimal(canonical)
    if value == value.to_integral_value():
        integer = int(value)
        return integer if -MAX_SAFE_INTEGER <= integer <= MAX_SAFE_INTEGER else canonical
    double = float(canonical)
    return double if Decimal(repr(double)) == value else canonical
