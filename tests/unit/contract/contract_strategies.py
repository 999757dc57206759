"""Hypothesis strategies for DynamoDB typed JSON and change events, shared by the contract tests."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from bridge.contract import ChangeEvent, EventName, Item, Origin

# DynamoDB strings are UTF-8: any code point except surrogates, control characters included.
texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
names = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=10)


@st.composite
def numbers(draw: st.DrawFn) -> str:
    """Any number DynamoDB stores, written in any of the ways it accepts."""
    digits = draw(st.text("0123456789", min_size=1, max_size=38).filter(lambda d: d[0] != "0"))
    adjusted = draw(st.integers(-130, 125))
    exponent = adjusted - (len(digits) - 1)
    sign = draw(st.sampled_from(["", "-", "+"]))
    style = draw(st.sampled_from(["exponent", "plain"]))
    if draw(st.booleans()) and style == "exponent":
        return sign + "0E" + str(draw(st.integers(-200, 200)))
    if style == "exponent":
        return f"{sign}{digits}E{exponent:+d}"
    if exponent >= 0:
        return sign + digits + "0" * exponent
    if len(digits) > -exponent:
        return sign + digits[:exponent] + "." + digits[exponent:]
    return sign + "0." + "0" * (-exponent - len(digits)) + digits


binaries = st.binary(max_size=20)
scalars: st.SearchStrategy[dict[str, Any]] = st.one_of(
    texts.map(lambda s: {"S": s}),
    numbers().map(lambda n: {"N": n}),
    binaries.map(lambda b: {"B": b}),
    st.booleans().map(lambda b: {"BOOL": b}),
    st.just({"NULL": True}),
    st.lists(texts, min_size=1, max_size=4, unique=True).map(lambda m: {"SS": m}),
    st.lists(numbers(), min_size=1, max_size=4, unique_by=Decimal).map(lambda m: {"NS": m}),
    st.lists(binaries, min_size=1, max_size=4, unique=True).map(lambda m: {"BS": m}),
)
attribute_values: st.SearchStrategy[dict[str, Any]] = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.dictionaries(names, children, max_size=4).map(lambda m: {"M": m}),
        st.lists(children, max_size=4).map(lambda elements: {"L": elements}),
    ),
    max_leaves=30,
)
items: st.SearchStrategy[Item] = st.dictionaries(names, attribute_values, max_size=6)
key_values: st.SearchStrategy[dict[str, Any]] = st.one_of(
    texts.filter(bool).map(lambda s: {"S": s}),
    numbers().map(lambda n: {"N": n}),
    binaries.filter(bool).map(lambda b: {"B": b}),
)
primary_keys: st.SearchStrategy[Item] = st.dictionaries(names, key_values, min_size=1, max_size=2)

long_values = st.integers(-(2**63), 2**63 - 1)


@st.composite
def change_events(draw: st.DrawFn) -> ChangeEvent:
    origin = draw(st.sampled_from(Origin))
    stream = origin is Origin.STREAM
    return ChangeEvent(
        table=draw(st.from_regex(r"[a-zA-Z0-9_.-]{3,255}", fullmatch=True)),
        event_name=draw(st.sampled_from(EventName)),
        event_id=draw(texts),
        stream_arn=draw(texts) if stream else "",
        shard_id=draw(texts) if stream else "",
        sequence_number=draw(st.from_regex(r"[0-9]{21,40}", fullmatch=True)) if stream else "",
        approximate_creation_time_ms=draw(long_values),
        version=draw(long_values),
        keys=draw(primary_keys),
        new_image=draw(st.none() | items),
        old_image=draw(st.none() | items),
        ttl_delete=draw(st.booleans()),
        origin=origin,
    )
