"""moto's endpoint, over plain HTTP: requests forwarded byte for byte, and the simulator's own
JSON calls (DescribeTable, moto's stream) signed with a dummy credential scope naming the
table's region (moto keeps one world per region and accepts any signature).
"""

from __future__ import annotations

import http.client
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "server", "date"}
)
_REGION = re.compile(r"Credential=[^/,\s]+/\d+/([a-z0-9-]+)/")


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes | list[bytes]
    """The body, or its chunks in order (sent without joining them)."""

    @property
    def data(self) -> bytes:
        return self.body if isinstance(self.body, bytes) else b"".join(self.body)

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((value for key, value in self.headers if key.lower() == lowered), None)


class MotoError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"moto answered {status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class Moto:
    def __init__(self, endpoint: str, *, timeout_s: float = 60.0) -> None:
        parsed = urllib.parse.urlsplit(endpoint)
        if parsed.scheme != "http" or not parsed.hostname:
            raise ValueError(f"moto endpoint must be http://host:port, got {endpoint!r}")
        self.endpoint = endpoint.rstrip("/")
        self._host = parsed.hostname
        self._port = parsed.port or 80
        self._timeout_s = timeout_s

    def forward(self, headers: Mapping[str, str], body: bytes) -> Reply:
        """The request as it came (minus hop-by-hop headers); moto's answer as it went, or
        AWS's InternalServerError naming moto when it cannot be reached."""
        sent = {k: v for k, v in headers.items() if k.lower() not in HOP_BY_HOP}
        try:
            return self._post(sent, body)
        except OSError as exc:
            error = {
                "__type": "com.amazonaws.dynamodb.v20120810#InternalServerError",
                "message": f"the simulator could not reach moto at {self.endpoint}: {exc}",
            }
            return Reply(500, [("Content-Type", "application/x-amz-json-1.0")], orjson.dumps(error))

    def call(self, target: str, request: dict[str, Any], region: str) -> Any:
        """A JSON call as the simulator itself; raises MotoError on an error answer."""
        headers = {
            "X-Amz-Target": target,
            "Content-Type": "application/x-amz-json-1.0",
            "Authorization": (
                f"AWS4-HMAC-SHA256 Credential=streamsim/20200101/{region}/dynamodb/"
                "aws4_request, SignedHeaders=host, Signature=0"
            ),
        }
        reply = self._post(headers, orjson.dumps(request))
        try:
            answer = orjson.loads(reply.data) if reply.data else {}
        except orjson.JSONDecodeError:
            answer = {}
        if reply.status != 200:
            kind = str(answer.get("__type", "")).rpartition("#")[2] if answer else ""
            message = str(answer.get("message", "")) if answer else reply.data[:200].decode()
            raise MotoError(reply.status, kind or f"HTTP{reply.status}", message)
        return answer

    def _post(self, headers: dict[str, str], body: bytes) -> Reply:
        connection = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout_s)
        try:
            connection.request("POST", "/", body, headers)
            response = connection.getresponse()
            data = response.read()
            kept = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
            return Reply(response.status, kept, data)
        finally:
            connection.close()


def region_of(headers: Mapping[str, str], default: str) -> str:
    """The region a SigV4 request was signed for (its credential scope)."""
    authorization = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
    found = _REGION.search(authorization)
    return found.group(1) if found else default
