"""`dynabridge demo` as a user runs it: a subprocess on the shared stack, exit 0 only when the
index equals the table, and no pipeline process left behind."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from dynabridge.demo.processes import dynabridge_argv
from dynabridge.devstack.config import StackConfig

DEMO_TIMEOUT_S = 420


def _processes_mentioning(text: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline:
            pids.append(int(entry.name))
    return pids


def test_demo_runs_the_pipeline_verifies_equal_and_leaves_no_process(
    stack: StackConfig, tmp_path: Path
) -> None:
    run_dir = tmp_path / "demo-run"
    argv = [*dynabridge_argv(), "demo", "--changes", "200", "--rate", "100"]
    argv += ["--cleanup", "--run-dir", str(run_dir)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=DEMO_TIMEOUT_S, check=False)
    report = f"stdout:\n{done.stdout}\nstderr:\n{done.stderr[-4000:]}"
    assert done.returncode == 0, report
    verify = [line for line in done.stdout.splitlines() if line.startswith("verify: ")]
    assert len(verify) == 1, report
    assert re.search(r"\(\d+ items\) vs index .* \(\d+ documents\): EQUAL$", verify[0]), report
    latency = re.search(
        r"p50 \d+ ms, p95 \d+ ms, p99 \d+ ms, max \d+ ms .*200 changes", done.stdout
    )
    assert latency, report
    pids = [int(p) for p in re.findall(r"\(pid (\d+)\)", done.stderr)]
    assert len(pids) == 2, report
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists(), f"pipeline process {pid} survived the demo"
    assert _processes_mentioning(str(run_dir)) == []
    assert (run_dir / "bridge.log").is_file()
    assert (run_dir / "indexer.log").is_file()
