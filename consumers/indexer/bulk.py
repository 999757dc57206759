"""The ``_bulk`` wire format both engines share: actions -> NDJSON bytes, response -> results.

Every write carries ``version`` with ``version_type=external_gte``; results come back one per
action, in request order, or the response is refused as a whole.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from json.encoder import encode_basestring
from typing import Any

from consumers.indexer.actions import Action, ActionKind, ItemResult

CONTENT_TYPE = "application/x-ndjson"
TOO_LARGE = "request_entity_too_large"
"""error_type given to a single action whose request the engine refused with 413."""

# One encoder for every document: json.dumps with non-default options builds a new encoder per
# call, a measurable share of a small document's cost.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
_quote: Any = encode_basestring


class MalformedResponse(Exception):  # noqa: N818 - names what the engine sent
    """The engine's bulk answer does not match the request; nothing in it can be trusted."""


def _header_prefixes(index: str) -> tuple[str, str]:
    quoted = _quote(index)
    return (
        '{"index":{"_index":%s,"version_type":"external_gte","_id":' % quoted,  # noqa: UP031
        '{"delete":{"_index":%s,"version_type":"external_gte","_id":' % quoted,  # noqa: UP031
    )


class BodyEncoder:
    """Encodes actions as a bulk body; remembers each index's header prefix between requests."""

    __slots__ = ("_prefixes",)

    def __init__(self) -> None:
        self._prefixes: dict[str, tuple[str, str]] = {}

    def encode(self, actions: Sequence[Action]) -> bytes:
        lines: list[str] = []
        append = lines.append
        prefixes = self._prefixes
        for action in actions:
            pair = prefixes.get(action.index)
            if pair is None:
                pair = prefixes[action.index] = _header_prefixes(action.index)
            tail = ',"version":%d}}' % action.version  # noqa: UP031 - the fastest formatting
            if action.kind is ActionKind.INDEX:
                append(pair[0] + _quote(action.doc_id) + tail)
                append(_ENCODER.encode(action.document))
            else:
                append(pair[1] + _quote(action.doc_id) + tail)
        append("")
        return "\n".join(lines).encode("utf-8")


def results(response: Mapping[str, Any], expected: int) -> list[ItemResult]:
    """One :class:`ItemResult` per item of a bulk response, in order."""
    items = response.get("items")
    if not isinstance(items, list) or len(items) != expected:
        count = len(items) if isinstance(items, list) else "no"
        raise MalformedResponse(f"bulk response has {count} items for {expected} actions")
    if not response.get("errors"):
        return [ItemResult(_only(item).get("status", 0), None, None) for item in items]
    return [_result(_only(item)) for item in items]


def _only(item: Mapping[str, Any]) -> Mapping[str, Any]:
    for body in item.values():
        return body  # type: ignore[no-any-return]
    raise MalformedResponse("empty bulk response item")


def _result(body: Mapping[str, Any]) -> ItemResult:
    status = body.get("status", 0)
    error = body.get("error")
    if error is None:
        return ItemResult(status, None, None)
    if isinstance(error, Mapping):
        return ItemResult(status, error.get("type"), _reason(error))
    return ItemResult(status, None, str(error))


def _reason(error: Mapping[str, Any]) -> str | None:
    reason = error.get("reason")
    cause = error.get("caused_by")
    if isinstance(cause, Mapping) and cause.get("reason"):
        # "failed to parse field [n]" is only useful with its cause ("For input string: ...").
        return f"{reason}: {cause.get('type')}: {cause.get('reason')}"
    return None if reason is None else str(reason)


def too_large(reason: str) -> ItemResult:
    return ItemResult(413, TOO_LARGE, reason)
