"""Minimal Confluent Schema Registry REST client over urllib: register a schema, look one up by id.

Both answers are immutable in a registry (an id always names the same schema; registering the
same schema again returns the same id), so they are cached for the life of the process.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from bridge.contract.errors import SchemaRegistryError, UnknownSchema


class SchemaRegistry:
    """A registry at ``url`` (``http://`` or ``https://``), optionally with basic auth."""

    def __init__(
        self, url: str, *, timeout_s: float = 10.0, auth: tuple[str, str] | None = None
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise SchemaRegistryError(
                f"schema registry URL must be http(s)://host[:port][/path], not {parts.scheme}://"
            )
        if parts.username is not None and auth is None:
            # Credentials in the URL move to the header, so the URL can be logged safely.
            auth = (
                urllib.parse.unquote(parts.username),
                urllib.parse.unquote(parts.password or ""),
            )
        netloc = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
        self.url = urllib.parse.urlunsplit(parts._replace(netloc=netloc)).rstrip("/")
        self._timeout_s = timeout_s
        self._authorization = (
            None
            if auth is None
            else "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
        )
        self._ids: dict[tuple[str, str], int] = {}
        self._schemas: dict[int, str] = {}

    def __repr__(self) -> str:
        return f"SchemaRegistry({self.url!r})"

    def register(self, subject: str, schema: str) -> int:
        """The id of ``schema`` (Avro JSON text) under ``subject``, registering it if new."""
        cached = self._ids.get((subject, schema))
        if cached is not None:
            return cached
        path = f"/subjects/{urllib.parse.quote(subject, safe='')}/versions"
        answer = self._request("POST", path, {"schema": schema})
        schema_id = answer.get("id")
        if not isinstance(schema_id, int):
            raise SchemaRegistryError(f"schema registry POST {path} answered without an id")
        self._ids[(subject, schema)] = schema_id
        self._schemas.setdefault(schema_id, schema)
        return schema_id

    def schema_by_id(self, schema_id: int) -> str:
        """The Avro JSON text the registry holds under ``schema_id``."""
        cached = self._schemas.get(schema_id)
        if cached is not None:
            return cached
        path = f"/schemas/ids/{schema_id}"
        schema = self._request("GET", path, None).get("schema")
        if not isinstance(schema, str):
            raise SchemaRegistryError(f"schema registry GET {path} answered without a schema")
        self._schemas[schema_id] = schema
        return schema

    def _request(self, method: str, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        request = urllib.request.Request(  # noqa: S310  the scheme was checked in __init__
            self.url + path,
            data=None if body is None else json.dumps(body).encode("utf-8"),
            method=method,
            headers={
                "Content-Type": "application/vnd.schemaregistry.v1+json",
                "Accept": "application/vnd.schemaregistry.v1+json, application/json",
            },
        )
        if self._authorization is not None:
            request.add_unredirected_header("Authorization", self._authorization)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as response:  # noqa: S310
                answer = json.loads(response.read())
        except urllib.error.HTTPError as error:
            text = f"schema registry {method} {path}: HTTP {error.code} {_registry_reason(error)}"
            if error.code == 404 and method == "GET":
                raise UnknownSchema(text) from error
            raise SchemaRegistryError(text, status=error.code) from error
        except (OSError, ValueError) as error:  # URLError and timeouts are OSErrors
            raise SchemaRegistryError(
                f"schema registry {method} {self.url}{path} failed: {error}"
            ) from error
        if not isinstance(answer, dict):
            raise SchemaRegistryError(f"schema registry {method} {path} answered {answer!r:.80}")
        return answer


def _registry_reason(error: urllib.error.HTTPError) -> str:
    """The registry's own message ({"error_code": ..., "message": ...}) if it sent one."""
    try:
        body = json.loads(error.read())
    except (OSError, ValueError):
        return str(error.reason)
    if isinstance(body, dict) and "message" in body:
        return f"{body.get('error_code', '')} {body['message']}".strip()
    return str(error.reason)
