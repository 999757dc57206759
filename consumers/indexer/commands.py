"""``dynabridge index ...``: process 2, Kafka -> Elasticsearch / OpenSearch."""

from __future__ import annotations

import click


@click.group("index")
def index_group() -> None:
    """Process 2: consume the change topics and keep search indices equal to the tables."""
