"""What the read-path benchmarks share: a Streams simulator, a real ``dynabridge bridge run``
against it (names of its own, its metrics, CPU and RSS from /proc), a py-spy profile cut into
stages, and the JSON + PNG results.

Used by ``bench_wire`` (one shard, against the raw limit), ``bench_shards`` (64 shards with
40 ms GetRecords) and ``bench_latency_sim`` (write -> visible in Elasticsearch).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient  # noqa: TID251 - the benchmark cleans its topics

from dynabridge.demo.errors import DemoError
from dynabridge.demo.processes import Child, Children, metric_total, wait_ready
from dynabridge.demo.runconfig import write_config
from tests.streamsim import StreamSimServer, start_server

BOOTSTRAP = os.environ.get("DYNABRIDGE_DEV_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
MOTO = os.environ.get("DYNABRIDGE_DEV_MOTO_ENDPOINT", "http://127.0.0.1:5000")
ES = os.environ.get("DYNABRIDGE_DEV_ES_URL", "http://127.0.0.1:9200")
RESULTS = Path("bench-results")
_TICK_S = os.sysconf("SC_CLK_TCK")


# -- the simulator ------------------------------------------------------------------------------


@contextlib.contextmanager
def simulator() -> Iterator[StreamSimServer]:
    """A simulator of the benchmark's own (a subprocess on a free port), passing DynamoDB
    calls (the lease table) to the shared moto; ``STREAMSIM_ENDPOINT`` reuses a running one."""
    reused = os.environ.get("STREAMSIM_ENDPOINT")
    if reused:
        yield StreamSimServer(reused, MOTO)
        return
    server = start_server(MOTO)
    try:
        yield server
    finally:
        server.stop()


# -- the bridge process -------------------------------------------------------------------------


@dataclass
class BridgeProcess:
    """A ``dynabridge bridge run`` of the benchmark, and what it costs the machine."""

    child: Child
    table: str
    topic_prefix: str
    lease_table: str
    work_dir: Path

    @property
    def pid(self) -> int:
        return self.child.process.pid

    def wait_ready(self, on_tick: Callable[[], object] | None = None) -> None:
        deadline = time.monotonic() + 120
        while True:
            if on_tick is not None:
                on_tick()
            try:
                wait_ready([self.child], 0.05)
                return
            except DemoError:
                if time.monotonic() > deadline or self.child.exited() is not None:
                    raise

    def metric(self, name: str) -> float:
        return metric_total(self.child, name) or 0.0

    def published(self) -> float:
        return self.metric("dynabridge_bridge_records_published")

    def cpu_s(self) -> float:
        """User + system CPU of the process, every thread (librdkafka's included)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK_S

    def thread_cpu_s(self) -> dict[str, float]:
        """CPU seconds per thread name (librdkafka names its threads ``rdk:...``)."""
        totals: dict[str, float] = {}
        for task in Path(f"/proc/{self.pid}/task").iterdir():
            with contextlib.suppress(OSError):
                text = (task / "stat").read_text()
                name = text[text.index("(") + 1 : text.rindex(")")]
                fields = text.rsplit(")", 1)[1].split()
                cpu = (int(fields[11]) + int(fields[12])) / _TICK_S
                totals[name] = totals.get(name, 0.0) + cpu
        return totals

    def rss_mb(self) -> float:
        return _status_kb(self.pid, "VmRSS") / 1024

    def peak_rss_mb(self) -> float:
        return _status_kb(self.pid, "VmHWM") / 1024


def _status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


@contextlib.contextmanager
def bridge_process(
    sim: StreamSimServer,
    table: str,
    *,
    bridge: dict[str, Any] | None = None,
    kafka_extra: dict[str, Any] | None = None,
    partitions: int = 6,
    extra_sections: dict[str, dict[str, Any]] | None = None,
    indexer: bool = False,
) -> Iterator[tuple[BridgeProcess, Children]]:
    """The bridge (and with ``indexer``, the indexer, ready) started on ``table`` of the
    simulator; stopped, and its topic and lease table deleted, when the block ends. The bridge
    may not be ready yet: :meth:`BridgeProcess.wait_ready` (sampling meanwhile)."""
    run = uuid.uuid4().hex[:8]
    work_dir = Path(tempfile.mkdtemp(prefix=f"bench-{table}-"))
    topic_prefix = f"bench{run}."
    lease_table = f"{table}-leases-{run}"
    data: dict[str, dict[str, Any]] = {
        "aws": {"region": "us-east-1", "endpoint_url": sim.endpoint},
        "kafka": {
            "bootstrap_servers": BOOTSTRAP,
            "topic_prefix": topic_prefix,
            "extra": dict(kafka_extra or {}),
        },
        "topics": {"partitions": partitions, "replication_factor": 1},
        "bridge": {
            "tables": [table],
            "lease_table": lease_table,
            "start_position": "trim_horizon",
            **(bridge or {}),
        },
        "metrics": {"host": "127.0.0.1", "port": 0},
        "logging": {"level": "WARNING", "format": "text"},
    }
    for section, values in (extra_sections or {}).items():
        data.setdefault(section, {}).update(values)
    path = work_dir / "dynabridge.yaml"
    write_config(path, data)
    children = Children()
    try:
        argv = ["bridge", "run", "--config", str(path)]
        bridge_child = children.start("bridge", argv, work_dir / "bridge.log")
        if indexer:
            argv = ["index", "run", "--config", str(path)]
            wait_ready([children.start("indexer", argv, work_dir / "indexer.log")], 120)
        yield BridgeProcess(bridge_child, table, topic_prefix, lease_table, work_dir), children
    finally:
        children.stop()
        _delete_topics(topic_prefix)
        _delete_lease_table(lease_table)
        shutil.rmtree(work_dir, ignore_errors=True)


def _delete_topics(prefix: str) -> None:
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    with contextlib.suppress(Exception):
        topics = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix)]
        for future in admin.delete_topics(topics, operation_timeout=30).values():
            with contextlib.suppress(Exception):
                future.result(30)


def _delete_lease_table(name: str) -> None:
    import boto3  # noqa: TID251 - the benchmark cleans its lease table in moto

    client = boto3.client(
        "dynamodb",
        endpoint_url=MOTO,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    )
    with contextlib.suppress(Exception):
        client.delete_table(TableName=name)


@dataclass
class Sampler:
    """Samples a process's CPU and RSS (and a caller's value) every ``every_s`` until stopped."""

    process: BridgeProcess
    every_s: float = 0.05
    samples: list[tuple[float, float, float]] = field(default_factory=list)
    """(wall clock, CPU seconds, RSS MB)."""

    def sample(self) -> tuple[float, float, float]:
        entry = (time.time(), self.process.cpu_s(), self.process.rss_mb())
        self.samples.append(entry)
        return entry

    def cpu_at(self, wall_s: float) -> float:
        """The process's CPU at ``wall_s``, from the last sample taken before it."""
        before = [cpu for at, cpu, _ in self.samples if at <= wall_s]
        return before[-1] if before else self.samples[0][1]

    @property
    def max_rss_mb(self) -> float:
        return max((rss for _, _, rss in self.samples), default=0.0)


def wait_until(
    condition: Callable[[], bool],
    timeout_s: float,
    what: str,
    every_s: float = 0.05,
    on_tick: Callable[[], object] | None = None,
) -> float:
    """Poll ``condition`` (and run ``on_tick``) until it holds; the wall clock when it did."""
    deadline = time.monotonic() + timeout_s
    while True:
        if on_tick is not None:
            on_tick()
        if condition():
            return time.time()
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:g}s waiting for {what}")
        time.sleep(every_s)


# -- py-spy -------------------------------------------------------------------------------------

STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    # (stage, frames that start it), innermost match wins; frames are "function (file".
    ("parse", ("get_records_response (bridge/streams.py", "_parse_get_shard_iterator (")),
    ("http", ("_send (botocore/endpoint.py", "URLLib3Session.send (")),
    ("sign", ("add_auth (botocore/auth.py", "SigV4Auth.add_auth (", "RequestSigner.sign (")),
    ("botocore", ("_make_api_call (botocore/client.py", "BaseClient._make_api_call (")),
    ("convert", ("change_events (bridge/records.py",)),
    ("encode", ("Encoder.encode (bridge/contract", "kafka_key (bridge/contract", "headers (")),
    ("produce", ("KafkaPublisher.publish (bridge/producer.py",)),
    ("deliveries", ("KafkaPublisher.poll (bridge/producer.py", "KafkaPublisher.flush (")),
    ("leases", ("LeaseKeeper", "LeaseCoordinator", "Worker._sync_readers (")),
    ("loop", ("Worker.run (bridge/worker.py",)),
    ("fetch stage", ("Fetcher._work (bridge/fetcher.py",)),
)


@contextlib.contextmanager
def profiled(pid: int, out: Path, rate_hz: int = 250) -> Iterator[Path]:
    """py-spy sampling ``pid`` (the thread holding the GIL, non-blocking) for the block."""
    spy = str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        spy = shutil.which("py-spy") or "py-spy"
    out.parent.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        # --gil: only the thread holding the GIL is sampled, the one running Python code.
        [spy, "record", "--pid", str(pid), "--rate", str(rate_hz), "--format", "raw",
         "--nonblocking", "--threads", "--gil", "-o", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield out
    finally:
        process.send_signal(2)  # SIGINT: py-spy writes what it sampled, then exits
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


def stage_samples(raw: Path) -> Counter[str]:
    """Samples per stage of a py-spy raw profile (a stack counts for its innermost stage)."""
    counts: Counter[str] = Counter()
    if not raw.exists():
        return counts
    for line in raw.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        if not number.isdigit():
            continue
        frames = stack.split(";")
        stage = "other"
        for frame in reversed(frames):
            found = next((s for s, marks in STAGES if any(m in frame for m in marks)), None)
            if found is not None:
                stage = found
                break
        counts[stage] += int(number)
    return counts


def stage_costs_us(
    raw: Path, records: int, python_cpu_s: float, native_cpu_s: float
) -> dict[str, float]:
    """CPU microseconds per record by stage: the Python threads' CPU shared out as py-spy's
    samples of them are, and librdkafka's own threads (native, not sampled) on their own."""
    counts = stage_samples(raw)
    total = sum(counts.values()) or 1
    costs = {
        stage: round(python_cpu_s * n / total / records * 1e6, 1)
        for stage, n in counts.most_common()
    }
    costs["librdkafka threads"] = round(native_cpu_s / records * 1e6, 1)
    return costs


def split_cpu(before: dict[str, float], after: dict[str, float]) -> tuple[float, float]:
    """(Python threads, librdkafka threads) CPU seconds between two ``thread_cpu_s``."""
    python = native = 0.0
    for name, cpu in after.items():
        spent = cpu - before.get(name, 0.0)
        if name.startswith("rdk:"):
            native += spent
        else:
            python += spent
    return python, native


# -- results ------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def write_results(name: str, summary: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(summary, indent=2))
    return path


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()
