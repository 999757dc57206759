"""The simulator's HTTP server: one port for the DynamoDB Streams API, the DynamoDB API (passed
to moto) and the control API (``/_sim/...``).

A thread per connection (``ThreadingHTTPServer``, HTTP/1.1 keep-alive): injected latency is a
plain sleep in the request's own thread with no lock held, and passing a call to moto is a
blocking HTTP call, so threads keep both simple; serving a page is a slice and a join of
records serialized when they were written, so the GIL is held for microseconds per page.
"""

from __future__ import annotations

import logging
import socket
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

from dynabridge.streamsim import control, errors
from dynabridge.streamsim.config import ConfigError, StreamConfig
from dynabridge.streamsim.errors import ApiError
from dynabridge.streamsim.feed import MotoFeed
from dynabridge.streamsim.moto import Moto, Reply
from dynabridge.streamsim.streams_api import TARGET_PREFIX as STREAMS_PREFIX
from dynabridge.streamsim.streams_api import Foreign, StreamsApi
from dynabridge.streamsim.synthetic import read
from dynabridge.streamsim.tables_api import TARGET_PREFIX as TABLES_PREFIX
from dynabridge.streamsim.tables_api import TablesApi
from dynabridge.streamsim.world import SimTable, World

log = logging.getLogger(__name__)

JSON_TYPE = "application/x-amz-json-1.0"


class Simulator:
    """What the server serves; also usable in-process (tests call ``aws`` and ``control``)."""

    def __init__(
        self,
        *,
        moto_endpoint: str | None,
        region: str = "us-east-1",
        auto_manage: bool = True,
        default_config: StreamConfig | None = None,
        seed: int | None = None,
        feed_idle_max_s: float = 0.05,
    ) -> None:
        self.region = region
        self._feed_idle_max_s = feed_idle_max_s
        self.world = World(seed=seed)
        self.moto = Moto(moto_endpoint) if moto_endpoint else None
        self.streams = StreamsApi(self.world)
        self.tables = TablesApi(
            self.world,
            self.moto,
            default_region=region,
            default_config=default_config or StreamConfig(),
            auto_manage=auto_manage,
            on_managed=self._feed,
            synthetic_reads=self._synthetic_read,
        )

    def aws(self, headers: dict[str, str], body: bytes) -> Reply:
        target = headers.get("x-amz-target", "")
        if target.startswith(STREAMS_PREFIX):
            return self._streams(target.removeprefix(STREAMS_PREFIX), headers, body)
        if target.startswith(TABLES_PREFIX):
            return self.tables.handle(target.removeprefix(TABLES_PREFIX), headers, body)
        return _error_reply(
            ApiError("UnknownOperationException", f"unknown X-Amz-Target {target!r}")
        )

    def control(self, method: str, target: str, body: bytes) -> tuple[int, bytes]:
        return control.dispatch(self, method, target, body)

    def close(self) -> None:
        for table in self.world.all_tables():
            self.tables.drop(table.name)

    def _streams(self, operation: str, headers: dict[str, str], body: bytes) -> Reply:
        try:
            request = orjson.loads(body) if body else {}
            if not isinstance(request, dict):
                raise orjson.JSONDecodeError("not an object", "", 0)
        except orjson.JSONDecodeError:
            return _error_reply(ApiError("SerializationException", "the body is not JSON"))
        try:
            if operation == "ListStreams":
                answer = self.streams.list_streams_json(
                    request, self._moto_streams(headers, request)
                )
                return _ok(orjson.dumps(answer))
            chunks = self.streams.handle_chunks(operation, request)
            return Reply(200, [("Content-Type", JSON_TYPE)], chunks)
        except ApiError as error:
            return _error_reply(error)
        except Foreign as foreign:
            if self.moto is None:
                return _error_reply(errors.not_found(f"Stream: {foreign} not found"))
            return self.moto.forward(headers, body)

    def _moto_streams(
        self, headers: dict[str, str], request: dict[str, Any]
    ) -> list[dict[str, str]]:
        """moto's streams of the tables the simulator does not simulate."""
        if self.moto is None:
            return []
        asked = {"TableName": request["TableName"]} if "TableName" in request else {}
        reply = self.moto.forward(headers, orjson.dumps(asked))
        if reply.status != 200:
            return []
        streams = orjson.loads(reply.data).get("Streams", [])
        simulated = {table.name for table in self.world.all_tables()}
        return [s for s in streams if s.get("TableName") not in simulated]

    def _feed(self, table: SimTable) -> None:
        assert self.moto is not None
        table.feed = MotoFeed(self.world, table, self.moto, idle_max_s=self._feed_idle_max_s)
        table.feed.start()

    def _synthetic_read(
        self, table: SimTable, operation: str, request: dict[str, Any]
    ) -> dict[str, Any]:
        state = table.state
        assert state is not None
        try:
            with state.lock:
                return read(state, operation, request)
        except ConfigError as exc:
            raise errors.validation(str(exc)) from None


def _ok(body: bytes) -> Reply:
    return Reply(200, [("Content-Type", JSON_TYPE)], body)


def _error_reply(error: ApiError) -> Reply:
    return Reply(
        error.status,
        [("Content-Type", JSON_TYPE), ("X-Amzn-ErrorType", error.code)],
        error.body(),
    )


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: SimServer

    def do_POST(self) -> None:
        if self.path.startswith(control.PREFIX + "/"):
            self._control()
            return
        body = self._body()
        headers = {key.lower(): value for key, value in self.headers.items()}
        try:
            reply = self.server.simulator.aws(headers, body)
        except Exception:
            log.exception("request %s failed", headers.get("x-amz-target"))
            reply = _error_reply(errors.internal())
        self._send(reply.status, reply.headers, reply.body)

    def do_GET(self) -> None:
        self._control()

    def do_PUT(self) -> None:
        self._control()

    def do_PATCH(self) -> None:
        self._control()

    def do_DELETE(self) -> None:
        self._control()

    def _control(self) -> None:
        body = self._body()
        try:
            status, answer = self.server.simulator.control(self.command, self.path, body)
        except Exception as exc:
            log.exception("control %s %s failed", self.command, self.path)
            status, answer = 500, orjson.dumps({"error": f"{type(exc).__name__}: {exc}"})
        self._send(status, [("Content-Type", "application/json")], answer)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, headers: list[tuple[str, str]], body: bytes | list[bytes]) -> None:
        chunks = [body] if isinstance(body, bytes) else body
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if not any(name.lower() == "x-amzn-requestid" for name, _ in headers):
            self.send_header("x-amzn-RequestId", uuid.uuid4().hex)
        self.send_header("Content-Length", str(sum(map(len, chunks))))
        self.end_headers()
        send_all(self.connection, chunks)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Requests are counted in the stats, not logged one by one."""

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format, *args)


IOV_MAX = 1024


def send_all(sock: socket.socket, chunks: list[bytes]) -> None:
    """Send ``chunks`` in order with scatter-gather writes (no joined copy of the body)."""
    views = [memoryview(chunk) for chunk in chunks if chunk]
    first = 0
    while first < len(views):
        sent = sock.sendmsg(views[first : first + IOV_MAX])
        while sent:
            size = len(views[first])
            if sent < size:
                views[first] = views[first][sent:]
                break
            sent -= size
            first += 1


class SimServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512

    def __init__(self, address: tuple[str, int], simulator: Simulator) -> None:
        super().__init__(address, _Handler)
        self.simulator = simulator

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def endpoint(self) -> str:
        host = self.server_address[0]
        return f"http://{host if isinstance(host, str) else host.decode()}:{self.port}"


def serve_in_thread(server: SimServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, name="streamsim", daemon=True)
    thread.start()
    return thread
