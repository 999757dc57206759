"""Kafka for operator commands: partitions, watermarks, the group's offsets and members, and a
bounded read of one partition. The only operations module importing ``confluent_kafka``.

Client errors leave it as :class:`OperationError`; a per-partition error of an offset reset is
an error too (Kafka does not raise for them), so a reset is all-or-nothing as far as we report.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from confluent_kafka import (  # noqa: TID251 - the operations Kafka adapter
    OFFSET_INVALID,
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient  # noqa: TID251 - the Kafka adapter
from confluent_kafka.admin._config import ConfigResource  # noqa: TID251 - not re-exported
from confluent_kafka.admin._listoffsets import OffsetSpec  # noqa: TID251 - the Kafka adapter
from confluent_kafka.admin._resource import ResourceType  # noqa: TID251

from bridge.runtime.kafka_security import SecurityWatch, first_answer
from bridge.runtime.settings import KafkaSettings
from consumers.indexer.records import Record
from dynabridge.operations.errors import OperationError
from dynabridge.operations.offset_targets import GroupInfo, Member, Watermarks


class KafkaAdmin:
    def __init__(self, kafka: KafkaSettings, timeout_s: float = 15.0) -> None:
        self._config = kafka.client_config()
        self._watch = SecurityWatch(kafka)
        admin_config: dict[str, Any] = {**self._config, "error_cb": self._watch}
        self._admin = AdminClient(admin_config)
        self._timeout_s = timeout_s
        self._consumer: Consumer | None = None

    def exists(self, topic: str) -> bool:
        found = self._metadata().topics.get(topic)
        return found is not None and found.error is None

    def _metadata(self) -> Any:
        """All topics' metadata: asking for all means a missing topic is never auto-created."""
        try:
            return first_answer(
                lambda timeout_s: self._admin.list_topics(timeout=timeout_s),
                self._admin.poll,
                KafkaException,
                self._watch,
                self._timeout_s,
            )
        except KafkaException as error:
            raise OperationError(
                f"cannot reach Kafka at {self._config['bootstrap.servers']}: {error} "
                "(check kafka.bootstrap_servers and security settings)"
            ) from None

    def partitions(self, topic: str) -> list[int]:
        """The topic's partitions."""
        found = self._metadata().topics.get(topic)
        if found is None or found.error is not None:
            raise OperationError(
                f"Kafka topic {topic} does not exist: the bridge creates it at start "
                "(check kafka.topic_prefix and the table name)"
            )
        return sorted(found.partitions)

    def watermarks(self, topic: str, partitions: Iterable[int]) -> dict[int, Watermarks]:
        parts = list(partitions)
        earliest = OffsetSpec.earliest()  # type: ignore[no-untyped-call]
        latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
        low = self._list_offsets(topic, parts, earliest)
        high = self._list_offsets(topic, parts, latest)
        return {p: Watermarks(low[p], high[p]) for p in parts}

    def offsets_for_time(
        self, topic: str, partitions: Iterable[int], epoch_ms: int
    ) -> dict[int, int]:
        """The first offset at or after ``epoch_ms`` per partition; -1 when all are older."""
        return self._list_offsets(topic, list(partitions), OffsetSpec.for_timestamp(epoch_ms))

    def _list_offsets(self, topic: str, partitions: list[int], spec: Any) -> dict[int, int]:
        request = {TopicPartition(topic, p): spec for p in partitions}
        futures = self._admin.list_offsets(request, request_timeout=self._timeout_s)
        return {
            tp.partition: int(self._result(future, f"ListOffsets {topic}[{tp.partition}]").offset)
            for tp, future in futures.items()
        }

    def topic_config(self, topic: str, name: str) -> str | None:
        """One configuration value of ``topic`` (e.g. ``cleanup.policy``)."""
        resource = ConfigResource(ResourceType.TOPIC, topic)
        future = self._admin.describe_configs([resource])[resource]
        entries = self._result(future, f"DescribeConfigs {topic}")
        entry = entries.get(name)
        return None if entry is None else str(entry.value)

    def delete_group(self, group: str) -> None:
        """Forget ``group`` and its committed offsets (it must have no live member)."""
        future = self._admin.delete_consumer_groups([group])[group]
        try:
            future.result(timeout=self._timeout_s)
        except TimeoutError:
            self._refused()
            raise OperationError(f"deleting consumer group {group}: no answer") from None
        except KafkaException as error:
            if error.args[0].code() != KafkaError.GROUP_ID_NOT_FOUND:
                raise OperationError(f"deleting consumer group {group}: {error}") from None

    def committed(self, group: str, topic: str, partitions: Iterable[int]) -> dict[int, int | None]:
        """The group's committed offsets; None where it never committed."""
        request = ConsumerGroupTopicPartitions(
            group, [TopicPartition(topic, p) for p in partitions]
        )
        future = self._admin.list_consumer_group_offsets([request])[group]
        result = self._result(future, f"OffsetFetch of group {group}")
        return {
            tp.partition: None if tp.offset == OFFSET_INVALID or tp.offset < 0 else tp.offset
            for tp in result.topic_partitions
        }

    def group(self, group: str) -> GroupInfo:
        future = self._admin.describe_consumer_groups([group])[group]
        try:
            description = future.result(timeout=self._timeout_s)
        except TimeoutError:
            self._refused()
            raise OperationError(f"DescribeGroups {group}: no answer") from None
        except KafkaException as error:
            if error.args[0].code() == KafkaError.GROUP_ID_NOT_FOUND:
                return GroupInfo(group, "DEAD", ())
            raise OperationError(f"DescribeGroups {group}: {error}") from None
        members = tuple(
            Member(
                member.member_id,
                member.client_id,
                member.host,
                tuple(f"{tp.topic}[{tp.partition}]" for tp in member.assignment.topic_partitions),
            )
            for member in description.members
        )
        return GroupInfo(group, _state_name(description.state), members)

    def alter(self, group: str, topic: str, offsets: Mapping[int, int]) -> None:
        """Commit ``offsets`` for the (empty) group; raises unless every partition took it."""
        parts = [TopicPartition(topic, p, offset) for p, offset in sorted(offsets.items())]
        request = ConsumerGroupTopicPartitions(group, parts)
        future = self._admin.alter_consumer_group_offsets([request])[group]
        result = self._result(future, f"offset reset of group {group}")
        failed = [
            f"{tp.topic}[{tp.partition}]: {tp.error}" for tp in result.topic_partitions if tp.error
        ]
        if failed:
            raise OperationError(
                f"Kafka refused the reset of group {group} on {len(failed)} partition(s): "
                f"{'; '.join(failed)} (a member joined meanwhile? check `dynabridge status`)"
            )

    def read(self, topic: str, partition: int, start: int, end: int) -> list[Record]:
        """Records of offsets [start, end) of one partition, without joining any group."""
        consumer = self._reader()
        consumer.assign([TopicPartition(topic, partition, start)])
        records: list[Record] = []
        deadline = time.monotonic() + self._timeout_s
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                self._watch.check()  # poll served error_cb: a refusal ends the read
                continue
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    break
                raise OperationError(f"reading {topic}[{partition}]: {error.str()}")
            offset = message.offset() or 0
            if offset >= end:
                break
            records.append(_record(message, topic, partition, offset))
            if offset >= end - 1:
                break
        return records

    def _reader(self) -> Consumer:
        if self._consumer is None:
            config: dict[str, Any] = {
                **self._config,
                # assign() never joins this group and nothing is committed: a pure reader.
                "group.id": f"dynabridge-trace-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "auto.offset.reset": "earliest",
            }
            self._consumer = Consumer({**config, "error_cb": self._watch})
        return self._consumer

    def _result(self, future: Any, doing: str) -> Any:
        try:
            return future.result(timeout=self._timeout_s)
        except KafkaException as error:
            self._refused()
            raise OperationError(f"{doing}: {error.args[0].str()}") from None
        except TimeoutError:
            self._refused()
            raise OperationError(f"{doing}: no answer within {self._timeout_s} s") from None

    def _refused(self) -> None:
        """Serve the clients' error callbacks, then raise a refusal they reported."""
        self._admin.poll(0)
        if self._consumer is not None:
            self._consumer.poll(0)
        self._watch.check()

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()


def _state_name(state: Any) -> str:
    return str(getattr(state, "name", state))


def _record(message: Any, topic: str, partition: int, offset: int) -> Record:
    _, timestamp_ms = message.timestamp()
    return Record(
        topic=topic,
        partition=partition,
        offset=offset,
        key=message.key(),
        value=message.value(),
        headers=tuple(message.headers() or ()),
        timestamp_ms=int(timestamp_ms),
    )
