"""``dynabridge dev ...``: the real local stack (Kafka, Elasticsearch, OpenSearch, moto)."""

from __future__ import annotations

import click


@click.group("dev")
def dev_group() -> None:
    """Run the real local stack as plain processes (no Docker needed)."""
