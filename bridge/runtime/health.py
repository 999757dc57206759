"""The HTTP endpoint both processes expose: ``/metrics`` (Prometheus), ``/healthz``, ``/readyz``.

Liveness is a heartbeat: the worker loop calls :meth:`Heartbeat.beat` every turn, and the
process is unhealthy once no beat arrived for ``stall_timeout_s`` (a stuck loop is restarted by
Kubernetes, crash-only). Readiness is set by the worker once its clients are connected.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST


class Heartbeat:
    """Liveness and readiness state, written by the loop and read by the HTTP thread."""

    def __init__(self, stall_timeout_s: float, clock: Callable[[], float] = time.monotonic):
        self._stall_timeout_s = stall_timeout_s
        self._clock = clock
        self._last_beat = clock()
        self._ready = False
        self._lock = threading.Lock()

    def beat(self) -> None:
        with self._lock:
            self._last_beat = self._clock()

    def set_ready(self, ready: bool) -> None:
        with self._lock:
            self._ready = ready

    def stalled_for_s(self) -> float:
        with self._lock:
            return self._clock() - self._last_beat

    def healthy(self) -> bool:
        return self.stalled_for_s() <= self._stall_timeout_s

    def ready(self) -> bool:
        with self._lock:
            ready = self._ready
        return ready and self.healthy()


class HealthServer:
    """Serves metrics and health in a daemon thread; ``port=0`` picks a free port."""

    def __init__(self, host: str, port: int, registry: CollectorRegistry, heartbeat: Heartbeat):
        handler = _handler_for(registry, heartbeat)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="health-http", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler_for(registry: CollectorRegistry, heartbeat: Heartbeat) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.startswith("/metrics"):
                self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif self.path.startswith("/healthz"):
                ok = heartbeat.healthy()
                body = f"{'ok' if ok else 'stalled'} {heartbeat.stalled_for_s():.1f}s\n"
                self._send(200 if ok else 503, body.encode(), "text/plain")
            elif self.path.startswith("/readyz"):
                ok = heartbeat.ready()
                self._send(200 if ok else 503, b"ready\n" if ok else b"not ready\n", "text/plain")
            else:
                self._send(404, b"try /metrics, /healthz or /readyz\n", "text/plain")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return  # scrapes every few seconds would drown the process's own logs

    return Handler
