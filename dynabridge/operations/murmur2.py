"""Kafka's murmur2 partitioner in pure Python: where a keyed record lands.

Equal to Java's ``Utils.murmur2`` + ``toPositive(h) % partitions`` and to librdkafka's
``murmur2``/``murmur2_random`` partitioners for non-empty keys (``bridge.contract.PARTITIONER``).
"""

from __future__ import annotations

_SEED = 0x9747B28C
_M = 0x5BD1E995
_R = 24
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """The 32-bit murmur2 hash of ``data`` as Java's signed ``int``."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    body = length - length % 4
    for i in range(0, body, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> _R
        k = (k * _M) & _MASK
        h = (h * _M) & _MASK
        h ^= k
    tail = length % 4
    # Java's switch falls through: 3 bytes left applies the 3-, 2- and 1-byte steps.
    if tail >= 3:
        h ^= data[body + 2] << 16
    if tail >= 2:
        h ^= data[body + 1] << 8
    if tail >= 1:
        h ^= data[body]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def partition(key: bytes, partition_count: int) -> int:
    """The partition of a record keyed ``key`` in a topic of ``partition_count`` partitions."""
    if partition_count < 1:
        raise ValueError(f"a topic has at least one partition, not {partition_count}")
    return (murmur2(key) & 0x7FFFFFFF) % partition_count
