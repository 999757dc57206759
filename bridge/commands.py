"""``dynabridge bridge ...``: process 1, DynamoDB Streams -> Kafka."""

from __future__ import annotations

import click


@click.group("bridge")
def bridge_group() -> None:
    """Process 1: read DynamoDB Streams shard by shard and publish each change to Kafka."""
