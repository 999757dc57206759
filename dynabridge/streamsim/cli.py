"""``dynabridge dev streams-sim``: run the DynamoDB Streams simulator in the foreground."""

from __future__ import annotations

import gc
import logging
import signal
import threading
from pathlib import Path
from typing import Any

import click
import orjson

DEFAULT_PORT = 5100


def _settings(pairs: tuple[str, ...]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for pair in pairs:
        key, separator, raw = pair.partition("=")
        if not separator:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--stream")
        try:
            values[key.strip()] = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise click.BadParameter(
                f"{pair!r}: the value must be a number or true/false", param_hint="--stream"
            ) from None
    return values


@click.command("streams-sim")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option(
    "--port", default=DEFAULT_PORT, show_default=True, help="port to listen on (0: any free port)"
)
@click.option(
    "--port-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="write the port listened on to this file once ready (with --port 0)",
)
@click.option(
    "--moto-endpoint",
    default="http://127.0.0.1:5000",
    show_default=True,
    help="moto, where DynamoDB calls go and moto tables' changes come from; '' for none "
    "(synthetic tables only)",
)
@click.option("--region", default="us-east-1", show_default=True, help="region of new tables")
@click.option(
    "--auto-manage/--no-auto-manage",
    default=True,
    show_default=True,
    help="simulate the stream of every moto table seen with an enabled stream "
    "(DescribeTable/CreateTable through this endpoint), with the --stream settings",
)
@click.option(
    "--stream",
    "stream_settings",
    multiple=True,
    metavar="KEY=VALUE",
    help="default stream setting of auto-managed tables, e.g. --stream shards=4 "
    "--stream rotate_every_s=30 (keys: docs/testing.md)",
)
@click.option(
    "--feed-idle-max-ms",
    default=50.0,
    show_default=True,
    help="longest wait between two polls of an idle moto table's stream: what a change written "
    "to moto may wait before it reaches the simulated stream; each poll costs moto ~1 ms",
)
@click.option("--seed", type=int, default=None, help="seed of the simulator's randomness")
@click.option("--log-level", default="INFO", show_default=True)
def streams_sim_command(
    host: str,
    port: int,
    port_file: Path | None,
    moto_endpoint: str,
    region: str,
    auto_manage: bool,
    stream_settings: tuple[str, ...],
    feed_idle_max_ms: float,
    seed: int | None,
    log_level: str,
) -> None:
    """Serve the DynamoDB Streams simulator until SIGTERM or Ctrl-C.

    One port speaks the DynamoDB Streams API (shards that rotate and split, throttling,
    latency, iterator expiry, trimming, lagging listings), passes DynamoDB calls to moto,
    and takes control requests under /_sim/ (docs/testing.md). Point a client's
    endpoint_url at it for both `dynamodb` and `dynamodbstreams`.
    """
    from dynabridge.streamsim.config import ConfigError, StreamConfig
    from dynabridge.streamsim.server import SimServer, Simulator, serve_in_thread

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    try:
        config = StreamConfig.from_json(_settings(stream_settings))
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--stream") from None
    simulator = Simulator(
        moto_endpoint=moto_endpoint or None,
        region=region,
        auto_manage=auto_manage,
        default_config=config,
        seed=seed,
        feed_idle_max_s=feed_idle_max_ms / 1000,
    )
    try:
        server = SimServer((host, port), simulator)
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {exc.strerror}; choose another --port"
        ) from None
    # Serving and generating allocate many short-lived dicts; with the default thresholds the
    # collector would walk every long-lived object of the world hundreds of times a second.
    gc.set_threshold(100_000, 50, 100)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    serve_in_thread(server)
    if port_file is not None:
        port_file.write_text(f"{server.port}\n")
    logging.getLogger(__name__).info(
        "streams simulator on %s (moto: %s)", server.endpoint, moto_endpoint or "none"
    )
    stop.wait()
    server.shutdown()
    simulator.close()
