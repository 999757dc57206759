"""A real HTTP server on 127.0.0.1 answering Streams calls from a script, recording each request.

The Streams adapter's tests run the whole client stack against it (credentials, SigV4,
retries, timeouts, botocore's error parser), so what they check is what production does.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ERROR_PREFIX = "com.amazonaws.dynamodb.v20120810#"


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b"{}"
    delay_s: float = 0.0
    """Wait this long before answering (a slow or timing-out endpoint)."""
    drop: bool = False
    """Close the connection without answering."""


def error_reply(code: str, status: int = 400, message: str = "scripted") -> Reply:
    """An error as DynamoDB Streams answers it (JSON 1.0: ``__type`` and ``message``)."""
    return Reply(status, json.dumps({"__type": ERROR_PREFIX + code, "message": message}).encode())


@dataclass
class Seen:
    target: str
    authorization: str
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes = b""
    """The request's headers and body exactly as received (to check its signature)."""
    path: str = "/"


@dataclass
class Script:
    replies: list[Reply] = field(default_factory=list)
    default: Reply = field(default_factory=Reply)
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next(self, seen: Seen) -> Reply:
        with self.lock:
            self.seen.append(seen)
            return self.replies.pop(0) if self.replies else self.default

    def targets(self) -> list[str]:
        with self.lock:
            return [s.target.rsplit(".", 1)[-1] for s in self.seen]


def _handler(script: Script) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            request = json.loads(raw or b"{}")
            reply = script.next(
                Seen(
                    self.headers.get("X-Amz-Target", ""),
                    self.headers.get("Authorization", ""),
                    request,
                    dict(self.headers.items()),
                    raw,
                    self.path,
                )
            )
            if reply.delay_s:
                time.sleep(reply.delay_s)  # the endpoint's own slowness, not synchronisation
            if reply.drop:
                self.close_connection = True
                return
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/x-amz-json-1.0")
            self.send_header("Content-Length", str(len(reply.body)))
            self.send_header("x-amzn-RequestId", "req-1")
            self.end_headers()
            self.wfile.write(reply.body)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    return Handler


@contextmanager
def streams_server(script: Script) -> Iterator[str]:
    """Serve ``script`` until the block ends; yields the endpoint URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(script))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


# -- wire bodies --------------------------------------------------------------------------------


def wire(value: Any) -> Any:
    """A typed value or item as JSON has it: bytes as base64 text."""
    if isinstance(value, dict):
        return {name: wire(member) for name, member in value.items()}
    if isinstance(value, list):
        return [wire(member) for member in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return value


def stream_record(
    sequence: int, new_image: dict[str, Any], created_s: float = 1714564800.0
) -> dict[str, Any]:
    """One INSERT record in wire form (as the service sends it)."""
    keys = {"pk": new_image["pk"]}
    return {
        "awsRegion": "us-east-1",
        "eventID": f"event-{sequence}",
        "eventName": "INSERT",
        "eventSource": "aws:dynamodb",
        "eventVersion": "1.1",
        "dynamodb": {
            "ApproximateCreationDateTime": created_s,
            "Keys": wire(keys),
            "NewImage": wire(new_image),
            "SequenceNumber": f"{sequence:021d}",
            "SizeBytes": 100,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
    }


def page_body(records: list[dict[str, Any]], next_iterator: str | None = "iterator-2") -> bytes:
    document: dict[str, Any] = {"Records": records}
    if next_iterator is not None:
        document["NextShardIterator"] = next_iterator
    return json.dumps(document).encode()


def utc(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)
