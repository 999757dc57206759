"""murmur2 equals Kafka's Java implementation (vectors from Kafka's UtilsTest.testMurmur2)."""

from __future__ import annotations

import pytest

from dynabridge.operations.murmur2 import murmur2, partition

KAFKA_VECTORS = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


@pytest.mark.parametrize(("data", "expected"), KAFKA_VECTORS.items())
def test_murmur2_equals_kafkas_vectors(data: bytes, expected: int) -> None:
    assert murmur2(data) == expected


def test_partition_is_the_positive_hash_modulo_the_count() -> None:
    assert partition(b"21", 7) == (-973932308 & 0x7FFFFFFF) % 7
    assert all(0 <= partition(bytes([n]) * n, 5) < 5 for n in range(40))
    with pytest.raises(ValueError, match="at least one partition"):
        partition(b"x", 0)
