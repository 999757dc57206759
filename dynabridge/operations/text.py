"""Human-readable output of ``status`` and ``trace`` (``--json`` gives the same data as JSON)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from dynabridge.operations.status import StatusReport, TableStatus
from dynabridge.operations.trace import TraceReport


def columns(rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    """Left-aligned columns, two spaces apart."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        indent
        + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{sign}{hours}h{minutes:02d}m"
    return f"{sign}{minutes}m{secs:02d}s" if minutes else f"{sign}{seconds:.1f}s"


def status_text(report: StatusReport) -> str:
    lines = [f"bridge workers (lease table {report.lease_table}):"]
    if not report.bridge_workers:
        lines.append("  none holds a lease")
    held = {} if report.bridge_scaling is None else report.bridge_scaling.leases_per_worker
    busy = {} if report.bridge_scaling is None else report.bridge_scaling.busy_per_worker
    for owner, alive in sorted(report.bridge_workers.items()):
        state = "alive (renewing)" if alive else "NOT RENEWING"
        lines.append(
            f"  {owner}: {state}, {held.get(owner, 0)} lease(s), {busy.get(owner, 0)} busy"
        )
    group = report.group
    if group is not None:
        lines.append(
            f"indexer group {group.group_id}: {group.state}, {len(group.members)} member(s)"
        )
        lines += [
            f"  {m.client_id} on {m.host}: {', '.join(m.partitions) or 'no partitions'}"
            for m in group.members
        ]
    lines += _scaling_text(report)
    for table in report.tables:
        lines += _table_text(table)
    for b in report.backfills:
        progress = f"{b.segments_done}/{b.segments} segments, {b.items} of ~{b.item_estimate} items"
        error = f" ({b.error})" if b.error else ""
        lines.append(f"backfill {b.table}: {b.state}, {progress}, run {b.run_id}{error}")
    lines += [f"problem: {problem}" for problem in report.problems]
    return "\n".join(lines)


def _scaling_text(report: StatusReport) -> list[str]:
    lines = ["scaling (docs/operations.md#scaling):"]
    bridge, indexer = report.bridge_scaling, report.indexer_scaling
    if bridge is not None:
        lines.append(
            f"  bridge: desired {bridge.desired} worker(s), {bridge.workers_alive} alive; "
            f"{bridge.open_shards} open shard(s), {bridge.busy_shards} busy, "
            f"{bridge.read_per_s:.0f} records/s read, oldest unread "
            f"{duration(bridge.oldest_unread_age_s)}"
        )
        lines.append(f"    because {bridge.reason}")
    if indexer is not None:
        rates = (
            "rates unknown (--interval 0)"
            if indexer.consumed_per_s is None
            else f"{indexer.produced_per_s or 0:.0f} records/s in, {indexer.consumed_per_s:.0f} out"
        )
        lines.append(
            f"  indexer: desired {indexer.desired} consumer(s), {indexer.members} member(s); "
            f"{indexer.partitions} partition(s), lag {indexer.lag_records}, {rates}"
        )
        lines.append(f"    because {indexer.reason}")
    return lines


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _table_text(table: TableStatus) -> list[str]:
    lines = [f"table {table.table}", f"  stream {table.stream_arn or '-'}"]
    if table.shards:
        rows = [
            [
                "shard",
                "owner",
                "checkpoint",
                "last version",
                "renewing",
                "unread age",
                "trim in",
                "busy",
                "read/s",
            ]
        ]
        for s in table.shards:
            renewing = "-" if s.renewing is None else ("yes" if s.renewing else "NO")
            rows.append(
                [
                    s.shard_id,
                    s.owner or "-",
                    s.checkpoint,
                    str(s.last_version),
                    renewing,
                    duration(s.unread_age_s),
                    duration(s.trim_in_s),
                    "yes" if s.busy else "no",
                    f"{s.read_per_s:.1f}",
                ]
            )
        lines += columns(rows, "    ")
    if table.partitions:
        lines.append(f"  topic {table.topic}: total lag {table.lag}")
        rows = [["partition", "committed", "end", "lag", "lag age", "in/s", "out/s"]]
        rows += [
            [
                str(p.partition),
                "-" if p.committed is None else str(p.committed),
                str(p.end),
                str(p.lag),
                duration(p.lag_s),
                _rate(p.produced_per_s),
                _rate(p.consumed_per_s),
            ]
            for p in table.partitions
        ]
        lines += columns(rows, "    ")
    if table.fields:
        lines.append(f"  index {table.index}: attributes not in one field of their own type")
        for status in table.fields:
            lines.append(f"    {status.attribute}: {'; '.join(status.notes)}")
    lines += [f"  problem: {problem}" for problem in table.problems]
    return lines


def trace_text(report: TraceReport) -> str:
    facts = report.facts
    lines = [
        f"item {report.keys} of table {report.table}",
        f"  Kafka key {report.kafka_key} -> {facts.topic}[{facts.partition}]; "
        f"document {report.index}/{report.doc_id}",
        f"  table:  {'present' if facts.table_document is not None else 'absent (deleted)'}",
    ]
    stream = facts.stream
    scanned = f"{report.stream_records_scanned} record(s) scanned" + (
        "" if report.stream_scan_complete else ", limit reached"
    )
    if stream is None:
        lines.append(f"  stream: no change of this item found ({scanned})")
    else:
        created = dt.datetime.fromtimestamp(stream.created_ms / 1000, dt.UTC).isoformat()
        state = "published (at or before the checkpoint)" if stream.published else "NOT published"
        lines.append(
            f"  stream: {stream.event_name} at sequence {stream.sequence_number} "
            f"(shard {stream.shard_id}, {created}, version ~{stream.version}); "
            f"lease checkpoint {stream.checkpoint}, owner {stream.owner or '-'}: {state}"
        )
    record = facts.kafka
    committed = "-" if facts.committed is None else str(facts.committed)
    if record is None:
        lines.append(f"  kafka:  no record with this key in the last {facts.kafka_scanned}")
    else:
        lines.append(
            f"  kafka:  {record.event_name} at offset {record.offset}, version {record.version}, "
            f"sequence {record.sequence_number}"
        )
    lines.append(f"          end {facts.end}, indexer group committed {committed}")
    if facts.index_document is None:
        lines.append("  index:  no document")
    else:
        same = "equal to the table" if not facts.differing_fields else "DIFFERENT from the table"
        lines.append(f"  index:  version {facts.index_version}, {same}")
    lines.append(f"verdict: {report.verdict.stage.value}: {report.verdict.text}")
    return "\n".join(lines)
