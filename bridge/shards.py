"""Shards and streams as DynamoDB Streams describes them, and the errors a stream can refuse with.

A shard without an ending sequence number is open; a stream is pinned by its ARN (re-enabling
a table's stream creates a new ARN). Pure data: the adapter in ``discovery`` fills it.

StreamError                     a table or its stream cannot be read (message names table + fix)
 ├── TableNotFound              DescribeTable: no such table
 ├── StreamNotEnabled           the table has no enabled stream
 ├── StreamViewTypeUnsupported  the view type lacks NEW_IMAGE while images are required
 └── StreamUnavailable          throttled, 5xx or unreachable: retry later (transient)
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ViewType(enum.StrEnum):
    KEYS_ONLY = "KEYS_ONLY"
    NEW_IMAGE = "NEW_IMAGE"
    OLD_IMAGE = "OLD_IMAGE"
    NEW_AND_OLD_IMAGES = "NEW_AND_OLD_IMAGES"


IMAGE_VIEW_TYPES = frozenset({ViewType.NEW_IMAGE, ViewType.NEW_AND_OLD_IMAGES})


@dataclass(frozen=True, slots=True)
class Shard:
    shard_id: str
    parent_shard_id: str | None
    starting_sequence_number: str
    ending_sequence_number: str | None  # None = open

    @property
    def is_open(self) -> bool:
        return self.ending_sequence_number is None


@dataclass(frozen=True, slots=True)
class StreamInfo:
    table: str
    stream_arn: str
    view_type: str
    key_names: tuple[str, ...]  # hash key then range key


class StreamError(Exception):
    """A table or its stream cannot be read; the message names the table and the fix."""


class TableNotFound(StreamError):  # noqa: N818 - names from the bridge interface
    pass


class StreamNotEnabled(StreamError):  # noqa: N818 - names from the bridge interface
    pass


class StreamViewTypeUnsupported(StreamError):  # noqa: N818 - names from the bridge interface
    pass


class StreamUnavailable(StreamError):  # noqa: N818 - names from the bridge interface
    """Throttling, a 5xx or a connection error: transient, try again later."""


def check_view_type(info: StreamInfo, *, require_images: bool) -> None:
    """Raise StreamViewTypeUnsupported when images are required and the stream has none."""
    if not require_images or info.view_type in IMAGE_VIEW_TYPES:
        return
    raise StreamViewTypeUnsupported(
        f"table {info.table!r}: stream view type {info.view_type} carries no NEW_IMAGE, so "
        "documents cannot be built. The view type cannot be changed in place: disable the "
        f"stream and enable it again with `aws dynamodb update-table --table-name {info.table} "
        "--stream-specification StreamEnabled=true,StreamViewType=NEW_AND_OLD_IMAGES` "
        "(then backfill), or set bridge.require_images=false for a keys-only consumer"
    )
