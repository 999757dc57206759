"""The ``_bulk`` wire format both engines share: actions -> NDJSON bytes, response -> results.

Every write carries ``version`` with ``version_type=external_gte``; results come back one per
action, in request order, with the concrete index each went to, or the response is refused as
a whole. Into a managed index a document carries its typed fields, and a delete is a tombstone
document at the delete's version (the version outlives ``gc_deletes``, so no stale change can
ever bring the item back).
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import orjson

from consumers.indexer.actions import Action, ActionKind, ItemResult
from consumers.indexer.templates import TOMBSTONE
from consumers.indexer.typed_fields import ROOT as TYPED_ROOT

CONTENT_TYPE = "application/x-ndjson"
RESPONSE_FILTER = {"filter_path": "errors,items.*.status,items.*.error,items.*._index"}
"""Query parameters of every ``_bulk``: the answer keeps only what ``results`` reads.

A full answer is ~200 bytes per item (ids, versions, shard counts) that the engine serialises,
the socket carries and the client parses while the loop waits; filtered, a success is
``{"index":{"status":201}}``. Every item keeps its ``status``, so item order and count hold.
"""
TOO_LARGE = "request_entity_too_large"
"""error_type given to a single action whose request the engine refused with 413."""

# orjson writes UTF-8 directly, ~3x faster than json's encoder on these documents and with the
# same bytes for them; it would write NaN as null where json refuses it, but plain_number never
# produces a NaN or an infinity.
_dumps = orjson.dumps
_TYPED_KEY = b'"%s":' % TYPED_ROOT.encode()


class MalformedResponse(Exception):  # noqa: N818 - names what the engine sent
    """The engine's bulk answer does not match the request; nothing in it can be trusted."""


def _header_prefixes(index: str) -> tuple[bytes, bytes]:
    quoted = _dumps(index)
    return (
        b'{"index":{"_index":%s,"version_type":"external_gte","_id":' % quoted,
        b'{"delete":{"_index":%s,"version_type":"external_gte","_id":' % quoted,
    )


class BodyEncoder:
    """Encodes actions as a bulk body; remembers each index's header prefix between requests."""

    __slots__ = ("_prefixes",)

    def __init__(self) -> None:
        self._prefixes: dict[str, tuple[bytes, bytes]] = {}

    def encode(self, actions: Sequence[Action], managed: Collection[str] = ()) -> bytes:
        """The bulk body; into an index of ``managed``, documents carry their typed fields and
        deletes are tombstones."""
        lines: list[bytes] = []
        append = lines.append
        prefixes = self._prefixes
        for action in actions:
            pair = prefixes.get(action.index)
            if pair is None:
                pair = prefixes[action.index] = _header_prefixes(action.index)
            tail = b',"version":%d}}' % action.version
            if action.kind is ActionKind.INDEX:
                append(pair[0] + _dumps(action.doc_id) + tail)
                source = _dumps(action.document)
                if action.typed and action.index in managed:
                    # Spliced rather than merged into the dict: the document stays the _source.
                    joint = b"," if len(source) > 2 else b""
                    source = source[:-1] + joint + _TYPED_KEY + _dumps(action.typed) + b"}"
                append(source)
            elif action.kind is ActionKind.DELETE and action.index in managed:
                append(pair[0] + _dumps(action.doc_id) + tail)
                append(b'{"%s":{"at":%d}}' % (TOMBSTONE.encode(), action.event_time_ms))
            else:
                append(pair[1] + _dumps(action.doc_id) + tail)
        append(b"")
        return b"\n".join(lines)


def results(response: Mapping[str, Any], expected: int) -> list[ItemResult]:
    """One :class:`ItemResult` per item of a bulk response, in order."""
    items = response.get("items")
    if not isinstance(items, list) or len(items) != expected:
        count = len(items) if isinstance(items, list) else "no"
        raise MalformedResponse(f"bulk response has {count} items for {expected} actions")
    return [_result(_only(item)) for item in items]


def _only(item: Mapping[str, Any]) -> Mapping[str, Any]:
    for body in item.values():
        return body  # type: ignore[no-any-return]
    raise MalformedResponse("empty bulk response item")


def _result(body: Mapping[str, Any]) -> ItemResult:
    status = body.get("status", 0)
    error = body.get("error")
    index = body.get("_index")
    if error is None:
        if type(status) is int and (index is None or type(index) is str):
            return _success(status, index)
        return ItemResult(status, None, None, index)
    if isinstance(error, Mapping):
        return ItemResult(status, error.get("type"), _reason(error), index)
    return ItemResult(status, None, str(error), index)


@functools.lru_cache(maxsize=1024)
def _success(status: int, index: str | None) -> ItemResult:
    """Nearly every item of a bulk answers one of a few (status, index) pairs: the immutable
    result is made once per pair, not once per item."""
    return ItemResult(status, None, None, index)


def _reason(error: Mapping[str, Any]) -> str | None:
    reason = error.get("reason")
    cause = error.get("caused_by")
    if isinstance(cause, Mapping) and cause.get("reason"):
        # "failed to parse field [n]" is only useful with its cause ("For input string: ...").
        return f"{reason}: {cause.get('type')}: {cause.get('reason')}"
    return None if reason is None else str(reason)


def too_large(reason: str) -> ItemResult:
    return ItemResult(413, TOO_LARGE, reason)
