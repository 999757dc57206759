"""Shard iterators: stateless tokens shaped like AWS's (``<stream ARN>|1|<base64>``).

The token carries the shard, the read position and when it was issued, so the server keeps
no per-iterator state (a reader may hold as many as it likes) and expiry is a comparison of
the issue time with ``now``. Tokens of the same shape whose payload is not ours (moto's) are
recognised as foreign, so the caller can pass them on.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

MAGIC = "sim1"


@dataclass(frozen=True, slots=True)
class ShardIterator:
    stream_arn: str
    shard_id: str
    after: int
    """Read records with sequence numbers above this."""
    issued_ms: int

    def token(self) -> str:
        payload = f"{MAGIC}|{self.shard_id}|{self.after}|{self.issued_ms}".encode()
        return f"{self.stream_arn}|1|{base64.b64encode(payload).decode()}"


class InvalidIteratorError(ValueError):
    """The token is ours but damaged."""


def parse(token: str) -> ShardIterator | None:
    """The iterator in ``token``; None when the token is not one of ours."""
    arn, separator, encoded = token.rpartition("|1|")
    if not separator:
        return None
    try:
        payload = base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    magic, _, rest = payload.partition("|")
    if magic != MAGIC:
        return None
    try:
        shard_id, after, issued_ms = rest.split("|")
        return ShardIterator(arn, shard_id, int(after), int(issued_ms))
    except ValueError as exc:
        raise InvalidIteratorError(token) from exc
