"""CPU per change of the indexer loop's own work on a record: decode, convert, batch entry.

No Kafka, no engine: the benchmark's realistic events (``bench_search.sample_events``) encoded as
the bridge encodes them, turned into batch entries by ``changes.to_entry`` with the indexer's
decoder, in batches of ``--batch`` with the last ``--held`` batches kept alive (the bulks in
flight and the open batch), after ``gc.freeze`` as the indexer does. One process per
collector setting, alternated, so each starts from the same heap::

    python -m tests.bench.bench_convert --docs 20000 --reps 5 --rounds 2

Prints the median and minimum CPU microseconds per change of each round, and the median spent
in the cyclic collector (timed by ``gc.callbacks``: steadier than the total on a loaded
machine), per setting:
``default`` (Python's thresholds) and ``indexer`` (``consumers.indexer.main.GC_THRESHOLDS``).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import subprocess
import sys
import time
from functools import partial

from bridge.contract import Encoder, decode
from consumers.indexer.changes import to_entry
from consumers.indexer.main import GC_THRESHOLDS
from consumers.indexer.records import Record
from tests.bench.bench_search import sample_events

SETTINGS = ("default", "indexer")


def measure(setting: str, docs: int, reps: int, batch: int, held: int) -> list[tuple[float, float]]:
    """(CPU, time in the collector) microseconds per change of each repetition, under
    collector ``setting``."""
    encoder = Encoder()
    records = [
        Record("bench.t", 0, offset, b"k", encoder.encode(event), (), 0)
        for offset, event in enumerate(sample_events(docs))
    ]
    read = partial(decode, registry=None, validate=False, old_image=False)
    if setting == "indexer":
        gc.set_threshold(*GC_THRESHOLDS)
    collecting = [0.0, 0.0]  # (started, total) of the collector's runs, CPU seconds

    def timed(phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            collecting[0] = time.process_time()
        else:
            collecting[1] += time.process_time() - collecting[0]

    gc.callbacks.append(timed)
    gc.freeze()
    per_change: list[tuple[float, float]] = []
    for _ in range(reps):
        live: list[list[object]] = []
        started, collecting[1] = time.process_time(), 0.0
        for start in range(0, len(records), batch):
            live.append([to_entry(r, read, "bench-") for r in records[start : start + batch]])
            if len(live) > held:
                live.pop(0)
        cpu = time.process_time() - started
        per_change.append((cpu / len(records) * 1e6, collecting[1] / len(records) * 1e6))
    return per_change


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--docs", type=int, default=20000)
    parser.add_argument("--reps", type=int, default=5, help="repetitions per process")
    parser.add_argument("--rounds", type=int, default=2, help="processes per setting")
    parser.add_argument("--batch", type=int, default=1000, help="indexer.batch_max_docs")
    parser.add_argument("--held", type=int, default=4, help="batches alive at once")
    parser.add_argument("--setting", choices=SETTINGS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.setting:  # one measuring process
        for cpu, collector in measure(args.setting, args.docs, args.reps, args.batch, args.held):
            print(f"{cpu:.1f} {collector:.1f}")
        return
    for round_ in range(args.rounds):
        for setting in SETTINGS:
            answer = subprocess.run(
                [sys.executable, "-m", "tests.bench.bench_convert", "--setting", setting,
                 "--docs", str(args.docs), "--reps", str(args.reps),
                 "--batch", str(args.batch), "--held", str(args.held)],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            rows = [tuple(map(float, line.split())) for line in answer.stdout.splitlines()]
            cpus = [row[0] for row in rows]
            collectors = [row[1] for row in rows]
            print(
                f"round {round_ + 1} {setting:8} CPU us/change: median "
                f"{statistics.median(cpus):.1f} min {min(cpus):.1f}; in the collector: median "
                f"{statistics.median(collectors):.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
