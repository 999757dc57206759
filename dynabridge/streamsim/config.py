"""A simulated stream's behaviour: shard counts, rotation, faults and limits, as one frozen
value. Built from the control API's JSON (unknown keys and bad values are refused, naming the
key) and replaced whole when the API changes it at runtime.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DAY_S = 86_400.0
THROTTLE_CODES = ("LimitExceededException", "ThrottlingException")


class ConfigError(ValueError):
    """A stream setting is unknown or out of range; the message names the key."""


@dataclass(frozen=True, slots=True)
class StreamConfig:
    shards: int = 1
    """Open shards at creation. Raising it at runtime splits shards until there are that many
    open; DynamoDB never merges shards, so it cannot go down."""
    rotate_every_records: int = 0
    """A shard closes (and a child with its range opens) after this many records; 0: never."""
    rotate_every_s: float = 0.0
    """A shard closes after being open this long (AWS: about 4 h); 0: never."""
    rotate_jitter: float = 0.0
    """Each shard's ``rotate_every_s`` is drawn in ``[1 - j, 1 + j]`` times the setting."""
    split_rate: float = 0.0
    """The share of automatic rotations that are splits into two children (halves of the
    parent's range) instead, while fewer than ``max_open_shards`` are open."""
    max_open_shards: int = 1024
    get_records_latency_ms: float = 0.0
    """Added to every GetRecords, outside any lock: 64 shards at 40 ms answer in parallel."""
    get_records_jitter_ms: float = 0.0
    """Plus a uniform random ``[0, jitter]``."""
    control_latency_ms: float = 0.0
    """Added to DescribeStream, GetShardIterator and ListStreams."""
    max_readers_per_shard: int = 2
    """More concurrent GetRecords on one shard get LimitExceededException (AWS: 2); 0: no
    limit."""
    throttle_rate: float = 0.0
    """The share of GetRecords answered LimitExceededException regardless of readers."""
    iterator_ttl_s: float = 900.0
    """A shard iterator older than this gets ExpiredIteratorException (AWS: 15 min)."""
    retention_s: float = DAY_S
    """Records older than this are trimmed (AWS: 24 h); a closed shard whose records are all
    trimmed disappears from the stream."""
    max_records: int = 2_000_000
    """Records kept in memory per stream; beyond it the oldest are trimmed as if expired."""
    listing_lag_s: float = 0.0
    """A new child shard is missing from DescribeStream for this long after it opens (the
    listing is eventually consistent); GetShardIterator on it works at once."""
    ending_lag_s: float = 0.0
    """A shard that closed is still listed as open (no EndingSequenceNumber) this long, so a
    listing can show an open parent beside its open child."""
    omit_shard_rate: float = 0.0
    """The chance that a DescribeStream page leaves out one of its shards."""
    describe_stream_per_s: float = 10.0
    """DescribeStream calls per second per stream before the throttling error (AWS: 10); 0:
    no limit."""
    describe_stream_throttle_code: str = "LimitExceededException"
    """The error DescribeStream answers above its rate: ``LimitExceededException`` or
    ``ThrottlingException`` (AWS does not document which; SDK reports suggest the latter)."""
    page_max_bytes: int = 1_048_576
    """A GetRecords page stops before this many bytes of records (``SizeBytes``; AWS: 1 MB)."""
    sequence_digits: int = 21
    """Digits of the sequence numbers (AWS: 21 to 40)."""
    oracle: bool = True
    """Keep a summary of every record ever emitted (sequence number, event, keys) for tests;
    benchmarks generating millions of records may turn it off."""

    def __post_init__(self) -> None:
        _check(self)

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def updated(self, changes: Mapping[str, Any]) -> StreamConfig:
        """This config with ``changes`` applied (the control API's partial update)."""
        return dataclasses.replace(self, **_coerced(changes))

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> StreamConfig:
        return cls(**_coerced(data or {}))


_FIELDS = {field.name: field for field in dataclasses.fields(StreamConfig)}


def _coerced(data: Mapping[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, raw in data.items():
        field = _FIELDS.get(key)
        if field is None:
            raise ConfigError(
                f"unknown stream setting {key!r}; known: {', '.join(sorted(_FIELDS))}"
            )
        kind = field.type
        if kind == "str":
            if not isinstance(raw, str):
                raise ConfigError(f"{key} must be a string, got {raw!r}")
            values[key] = raw
        elif kind == "bool":
            if not isinstance(raw, bool):
                raise ConfigError(f"{key} must be true or false, got {raw!r}")
            values[key] = raw
        elif kind == "int":
            if isinstance(raw, bool) or not isinstance(raw, int):
                raise ConfigError(f"{key} must be an integer, got {raw!r}")
            values[key] = raw
        else:
            if isinstance(raw, bool) or not isinstance(raw, int | float):
                raise ConfigError(f"{key} must be a number, got {raw!r}")
            values[key] = float(raw)
    return values


def _check(config: StreamConfig) -> None:
    for name in (
        "rotate_every_records", "rotate_every_s", "get_records_latency_ms",
        "get_records_jitter_ms", "control_latency_ms", "max_readers_per_shard",
        "listing_lag_s", "ending_lag_s", "describe_stream_per_s",
    ):  # fmt: skip
        if getattr(config, name) < 0:
            raise ConfigError(f"{name} must be >= 0, got {getattr(config, name)}")
    for name in ("rotate_jitter", "split_rate", "throttle_rate", "omit_shard_rate"):
        if not 0 <= getattr(config, name) <= 1:
            raise ConfigError(f"{name} is a fraction in [0, 1], got {getattr(config, name)}")
    for name in ("shards", "max_open_shards", "max_records", "page_max_bytes"):
        if getattr(config, name) < 1:
            raise ConfigError(f"{name} must be >= 1, got {getattr(config, name)}")
    for name in ("iterator_ttl_s", "retention_s"):
        if getattr(config, name) <= 0:
            raise ConfigError(f"{name} must be > 0 seconds, got {getattr(config, name)}")
    if config.describe_stream_throttle_code not in THROTTLE_CODES:
        raise ConfigError(
            f"describe_stream_throttle_code is one of {', '.join(THROTTLE_CODES)}, got "
            f"{config.describe_stream_throttle_code!r}"
        )
    if not 21 <= config.sequence_digits <= 40:
        raise ConfigError(
            f"sequence_digits is 21 to 40 (AWS's range), got {config.sequence_digits}"
        )
    if config.shards > config.max_open_shards:
        raise ConfigError(
            f"shards ({config.shards}) is above max_open_shards ({config.max_open_shards})"
        )
