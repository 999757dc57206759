"""``dynabridge demo``: the pipeline end to end on the local stack, with its measured latency.

Exit codes (``bridge.runtime.exits``): 0 the index equals the table; 1 the demo could not run
(stack, table, a process); 2 bad options; 4 the index differs from the table (or not every
change arrived in time); 6 interrupted (Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from types import FrameType

import click

from bridge.runtime.exits import ExitCode
from bridge.runtime.settings import SearchBackend


def _progress(message: str) -> None:
    click.echo(f"[demo] {message}", err=True)


def _terminate_as_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM takes Ctrl-C's path: stop the children, then exit


@click.command("demo")
@click.option(
    "--changes",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="How many changes to write (inserts, replaces, updates, deletes).",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0),
    default=100.0,
    show_default=True,
    help="Writes per second (open loop); 0 writes as fast as the table accepts.",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1, max=32),
    default=4,
    show_default=True,
    help="Writer threads: each write waits for DynamoDB, so an open loop needs several to "
    "hold the rate when writes slow down.",
)
@click.option(
    "--table",
    default=None,
    help="Table name (created if missing; reused, with its pipeline state, if it "
    "exists). Default: a new demo-<random> table per run.",
)
@click.option(
    "--backend",
    type=click.Choice([b.value for b in SearchBackend]),
    default=SearchBackend.ELASTICSEARCH.value,
    show_default=True,
)
@click.option("--seed", type=int, default=7, show_default=True, help="Workload random seed.")
@click.option(
    "--drain-timeout",
    "drain_timeout_s",
    type=click.FloatRange(min=1),
    default=120.0,
    show_default=True,
    help="Seconds to wait for every change to become visible.",
)
@click.option(
    "--cleanup",
    is_flag=True,
    help="Afterwards delete the table, lease table, topics and index of the run.",
)
@click.option(
    "--run-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Config file and process logs (default .cache/demo/<table>).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
def demo_command(
    changes: int, rate: float, threads: int, table: str | None, backend: str, seed: int,
    drain_timeout_s: float, cleanup: bool, run_dir: Path | None, as_json: bool,
) -> None:  # fmt: skip
    """Run the whole pipeline on the local stack and measure it.

    Starts the stack if needed (the code of `dynabridge dev up`), creates a table with a
    NEW_AND_OLD_IMAGES stream, runs `bridge run` and `index run` as child processes, writes a
    mixed workload (nested maps, lists, sets, 38-digit numbers, binary) while showing it arrive
    in the index, then runs `dynabridge verify` and prints the end-to-end latency: per change,
    from the DynamoDB write returning to a GET showing that change. Ctrl-C stops everything.
    """
    from dynabridge.demo.errors import DemoError
    from dynabridge.demo.report import result_json, result_text
    from dynabridge.demo.runner import DemoOptions, run
    from dynabridge.devstack.config import ConfigError, load

    options = DemoOptions(
        changes, rate, threads, table, SearchBackend(backend), seed, drain_timeout_s, cleanup,
        run_dir,
    )  # fmt: skip
    try:
        config = load(os.environ)
    except ConfigError as error:
        raise click.UsageError(str(error)) from None
    previous = signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    try:
        result = run(options, config, _progress)
    except KeyboardInterrupt:
        _progress("interrupted: the pipeline processes were stopped")
        sys.exit(ExitCode.STOPPED)
    except DemoError as error:
        click.echo(f"dynabridge demo: {error}", err=True)
        sys.exit(ExitCode.FATAL)
    finally:
        signal.signal(signal.SIGTERM, previous)
    if as_json:
        click.echo(json.dumps(result_json(result), indent=2))
    else:
        click.echo(result_text(result, options))
    (result.config_path.parent / "result.json").write_text(
        json.dumps(result_json(result), indent=2)
    )
    sys.exit(ExitCode.OK if result.ok else ExitCode.DIFFERENT)
