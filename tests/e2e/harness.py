"""The e2e test's handle on its pipelines: fresh names and tables, seeded writers, the final
wait and check, and the teardown of everything the test created on the shared servers."""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from confluent_kafka.admin import AdminClient  # noqa: TID251 - tests clean up their topics

from tests.e2e.checks import final_check, wait_until_indexed
from tests.e2e.pipeline import Names, Pipeline, _deep_merge, base_config
from tests.e2e.workload import KeyKind, Ledger, TableSpec, TableWriter
from tests.indices import drop_table_indices

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodbstreams import DynamoDBStreamsClient


class E2E:
    """A test's handle: ``make(kinds, ...)`` -> a Pipeline with fresh tables and their ledgers;
    ``wait`` and ``check`` for the end of every test."""

    def __init__(
        self,
        dynamodb: DynamoDBClient,
        streams: DynamoDBStreamsClient,
        unique_name: Callable[[str], str],
        workdir: Path,
        endpoints: dict[str, str],
    ) -> None:
        self.dynamodb = dynamodb
        self.streams = streams
        self._unique = unique_name
        self.workdir = workdir
        self.kafka = endpoints["kafka"]
        self.es_url = endpoints["es"]
        self._endpoints = endpoints
        self.pipelines: list[Pipeline] = []
        # E2E_SEED replays a failed run (the seed is printed first thing in each test's output).
        self.seed = int(os.environ.get("E2E_SEED") or random.SystemRandom().randrange(2**31))
        print(f"E2E_SEED={self.seed}")

    def writers(self, ledgers: list[Ledger], key_space: int, **options: Any) -> list[TableWriter]:
        """One seeded writer per table, over ``key_space`` keys each."""
        return [
            TableWriter(self.dynamodb, ledger, random.Random(self.seed + n), key_space, **options)
            for n, ledger in enumerate(ledgers)
        ]

    def wait(
        self,
        pipeline: Pipeline,
        ledgers: list[Ledger],
        timeout_s: float,
        excluded: set[bytes] = frozenset(),  # type: ignore[assignment]
    ) -> float:
        """Until every index equals its table (or AssertionError); the seconds it took."""
        return wait_until_indexed(
            pipeline.search_url,
            pipeline.names,
            ledgers,
            timeout_s,
            pipeline.assert_alive,
            pipeline.config["kafka"]["bootstrap_servers"],
            excluded,
        )

    def check(
        self, pipeline: Pipeline, ledgers: list[Ledger], verify_config: Path | None = None
    ) -> dict[str, Any]:
        """verify equal for each table, and nothing lost (checks.final_check)."""
        return final_check(
            dynamodb=self.dynamodb,
            streams=self.streams,
            kafka=pipeline.config["kafka"]["bootstrap_servers"],
            url=pipeline.search_url,
            names=pipeline.names,
            ledgers=ledgers,
            verify_config=verify_config or pipeline.config_path,
        )

    def make(
        self,
        kinds: list[KeyKind],
        *,
        kafka: str | None = None,
        search_url: str | None = None,
        engine_url: str | None = None,
        overrides: dict[str, Any] | None = None,
    ) -> tuple[Pipeline, list[Ledger]]:
        """``search_url`` is what the processes talk to (a proxy, say); ``engine_url`` the engine
        itself, for the test's own checks and clean-up (default: ``search_url``)."""
        specs = [TableSpec(self._unique(f"e2e{i}"), kind) for i, kind in enumerate(kinds)]
        names = Names(
            tables=tuple(s.name for s in specs),
            topic_prefix=self._unique("e2e") + ".",
            lease_table=self._unique("e2e-leases"),
            group=self._unique("e2e-indexer"),
            index_prefix=self._unique("e2e") + "-",
        )
        config = base_config(
            names,
            kafka or self._endpoints["kafka"],
            search_url or self._endpoints["es"],
            self._endpoints["moto"],
        )
        workdir = self.workdir / f"pipeline-{len(self.pipelines)}"
        workdir.mkdir()
        search = engine_url or search_url or self._endpoints["es"]
        pipeline = Pipeline(workdir, names, _deep_merge(config, overrides or {}), search)
        self.pipelines.append(pipeline)
        for spec in specs:
            spec.create(self.dynamodb)
        return pipeline, [Ledger(spec) for spec in specs]

    def cleanup(self, kafka: str, es_url: str, failed: bool) -> None:
        for pipeline in self.pipelines:
            pipeline.close()
            if failed:
                print(f"\n===== logs of {pipeline.workdir} =====\n{pipeline.log_report()}")
            names = pipeline.names
            for table in [*names.tables, names.lease_table]:
                with contextlib.suppress(self.dynamodb.exceptions.ResourceNotFoundException):
                    self.dynamodb.delete_table(TableName=table)
            if pipeline.config["kafka"]["bootstrap_servers"] == kafka:
                topics = [
                    t for table in names.tables for t in (names.topic(table), names.dlq(table))
                ]
                admin = AdminClient({"bootstrap.servers": kafka})
                for future in admin.delete_topics(topics, operation_timeout=10).values():
                    with contextlib.suppress(Exception):
                        future.result(timeout=30)
            search_url = pipeline.search_url
            for table in names.tables:
                drop_table_indices(search_url, names.index(table))
                with contextlib.suppress(Exception):
                    AdminClient({"bootstrap.servers": kafka}).delete_consumer_groups(
                        [f"{names.group}.reindex.{n}" for n in (1, 2, 3)]
                    )
