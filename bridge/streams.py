"""DynamoDB Streams adapter: GetShardIterator/GetRecords, botocore errors -> the reader's own.

The only module of the read path that touches boto3; the reader sees :class:`Page` and the
:class:`~bridge.reader.ShardReadError` tree, never a botocore exception (a fatal failure is a
``bridge.aws.AwsCallError``).

boto3 does everything but one step: credentials (the standard chain, refreshed before they
expire), SigV4, endpoint resolution, retries, timeouts, and the parsing of *error* bodies, so
error codes reach the table below exactly as botocore names them. The step replaced is the
parsing of a successful GetRecords / GetShardIterator body: botocore walks every value of every
record against the service model in Python (~6x the cost of orjson, the largest cost of the
whole process). A ``before-parse`` handler on this client's own event emitter (the hook
botocore's own handlers use to rewrite a response) parses the body with orjson into exactly
the structure botocore would return (B and BS as bytes, ``ApproximateCreationDateTime`` as an
aware datetime) and hands botocore an empty body to walk. Other operations, DescribeStream
included, are untouched.

``Binaries.BASE64`` (the bridge's own read path) leaves the images' B and BS as the base64 text
the service sent: the contract writes binaries as that same text, so decoding them only to
encode them again cost a fifth of the process's per-record time on items with binaries. Keys
are always decoded (the Kafka key is built from bytes).

GetRecords itself skips botocore's per-call machinery (parameter validation and serialisation,
endpoint rules, a dozen events, the retry handler: about 1 ms of CPU a call, most of the cost
of an empty page, and the loop's page rate with many shards): the request is built here, signed
by the client's own :class:`~botocore.signers.RequestSigner` (its credentials, refreshed before
they expire, SigV4 for the endpoint and signing context botocore resolved for this client's
last GetShardIterator) and sent on the client's own HTTP session (its pool, timeouts, proxies
and TLS settings). A 2xx body is parsed as above. An error body is parsed by botocore's own
parser for the service's protocol, so codes and messages reach the table below exactly as
before; an answer botocore would retry (throttling, 5xx) and a failed connection are asked
again through the client, whose retries and backoff then decide, so nothing fails faster than
it did; a read timeout is the reader's :class:`~bridge.reader.TimedOutError` at once (asking
the same page again would only wait again). Until the client has made a GetShardIterator (the
endpoint and signing context are learnt from it), GetRecords goes through the client.
"""

from __future__ import annotations

import binascii
import datetime as dt
import enum
import functools
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson
from botocore.awsrequest import AWSRequest  # noqa: TID251 - the Streams adapter
from botocore.exceptions import (  # noqa: TID251 - the Streams adapter
    ClientError,
    ConnectionClosedError,
    ConnectionError,
    EndpointConnectionError,
    HTTPClientError,
    ReadTimeoutError,
)
from botocore.parsers import create_parser  # noqa: TID251 - the Streams adapter

from bridge.aws import TRANSIENT_CODES, error_code, translated
from bridge.reader import (
    ExpiredIteratorError,
    IteratorRequest,
    Page,
    ShardGoneError,
    ShardReadError,
    ThrottledError,
    TimedOutError,
    TrimmedDataError,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodbstreams import DynamoDBStreamsClient

_ERRORS: dict[str, type[ShardReadError]] = {
    "ExpiredIteratorException": ExpiredIteratorError,
    "TrimmedDataAccessException": TrimmedDataError,
    "ResourceNotFoundException": ShardGoneError,
    "LimitExceededException": ThrottledError,
    "ThrottlingException": ThrottledError,
    "ProvisionedThroughputExceededException": ThrottledError,
    "RequestLimitExceeded": ThrottledError,
    # botocore already retried these; backing off here keeps the loop (and the heartbeat) alive.
    "InternalServerError": ThrottledError,
    "ServiceUnavailable": ThrottledError,
}
_TRANSIENT = (EndpointConnectionError, ConnectionClosedError, ReadTimeoutError)

_SERVICE = "dynamodb-streams"
"""botocore's hyphenated service id of ``dynamodbstreams``: the events' middle part."""
_GET_RECORDS_HEADERS = {
    "Content-Type": "application/x-amz-json-1.0",
    "X-Amz-Target": "DynamoDBStreams_20120810.GetRecords",
}
"""The JSON 1.0 protocol's headers of a GetRecords request (what botocore's serializer sets)."""
_WIRE_BYTES = "dynabridge:wire_bytes"
_PARSE_S = "dynabridge:parse_s"
"""Extra keys of the parsed response: the body's size and the time its parse took."""


class Binaries(enum.Enum):
    """What a page's B and BS values are."""

    BYTES = "bytes"
    """Bytes, in keys and images: exactly botocore's structure."""
    BASE64 = "base64"
    """Bytes in keys; the base64 text the service sent in images."""


class MalformedResponseError(Exception):
    """A 2xx GetRecords/GetShardIterator body that is not the JSON object the API defines.

    botocore would have returned an empty response for it (a page without records and without
    a next iterator reads as a closed shard); the reader backs off and asks again instead.
    """


class DynamoStreams:
    """:class:`bridge.reader.StreamsClient` over a boto3 ``dynamodbstreams`` client.

    Installs the orjson parse of GetRecords and GetShardIterator on ``client`` (once, however
    many adapters share the client: the first one's ``binaries`` holds); the client's other
    calls keep botocore's parser. Once the client has made a GetShardIterator, GetRecords are
    signed and sent directly (see the module's docstring).
    """

    def __init__(
        self,
        client: DynamoDBStreamsClient,
        *,
        binaries: Binaries = Binaries.BYTES,
    ) -> None:
        self._client = client
        self._binaries = binaries
        events = client.meta.events
        events.register(
            f"before-parse.{_SERVICE}.GetRecords",
            functools.partial(_parse_get_records, binaries=binaries),
            unique_id="dynabridge-parse-GetRecords",
        )
        events.register(
            f"before-parse.{_SERVICE}.GetShardIterator",
            _parse_get_shard_iterator,
            unique_id="dynabridge-parse-GetShardIterator",
        )
        # The client's own signer and HTTP session (botocore has no public name for either);
        # a botocore without them leaves every GetRecords to the client.
        self._signer: Any = getattr(client, "_request_signer", None)
        endpoint = getattr(client, "_endpoint", None)
        self._http: Any = getattr(endpoint, "http_session", None)
        self._target: tuple[str, dict[str, Any]] | None = None
        """(URL, signing context) of the client's last GetShardIterator."""
        model = client.meta.service_model
        self._error_parser = create_parser(model.protocol)
        self._error_shape: Any = model.operation_model("GetRecords").output_shape
        if self._signer is not None and self._http is not None:
            events.register(f"before-sign.{_SERVICE}.GetShardIterator", self._learn_target)

    def _learn_target(self, request: AWSRequest, **_: Any) -> None:
        """botocore's ``before-sign`` event: where, and how signed, this client's calls go."""
        signing = request.context.get("signing")
        if request.url:
            self._target = (request.url, dict(signing) if signing else {})

    def shard_iterator(self, stream_arn: str, shard_id: str, request: IteratorRequest) -> str:
        kwargs: dict[str, Any] = {
            "StreamArn": stream_arn,
            "ShardId": shard_id,
            "ShardIteratorType": request.kind.value,
        }
        if request.sequence_number is not None:
            kwargs["SequenceNumber"] = request.sequence_number
        try:
            response = self._client.get_shard_iterator(**kwargs)
        except (ClientError, *_TRANSIENT) as error:
            raise _translated(error, f"GetShardIterator {shard_id}") from error
        except MalformedResponseError as error:
            raise ThrottledError(f"GetShardIterator {shard_id}: {error}") from error
        iterator = response.get("ShardIterator")
        if not iterator:
            raise ShardGoneError(f"GetShardIterator {shard_id} returned no iterator")
        return iterator

    def records(self, iterator: str, limit: int) -> Page:
        target = self._target
        if target is None:
            return self._client_records(iterator, limit)
        url, signing = target
        body = orjson.dumps({"ShardIterator": iterator, "Limit": limit})
        request = AWSRequest("POST", url, _GET_RECORDS_HEADERS, body)
        if signing:
            request.context["signing"] = dict(signing)
        self._signer.sign("GetRecords", request)
        try:
            response = self._http.send(request.prepare())
        except ReadTimeoutError as error:
            raise TimedOutError(f"GetRecords: {error}") from error
        except (ConnectionError, HTTPClientError):
            return self._client_records(iterator, limit)  # a stale connection, most often
        status: int = response.status_code
        content: bytes = response.content
        if status < 300:
            started = time.perf_counter()
            try:
                parsed = get_records_response(content, self._binaries)
            except MalformedResponseError as error:
                raise ThrottledError(f"GetRecords: {error}") from error
            return Page(
                parsed.get("Records", []),
                parsed.get("NextShardIterator"),
                wire_bytes=len(content),
                parse_s=time.perf_counter() - started,
            )
        answer = {"status_code": status, "headers": response.headers, "body": content}
        refused = ClientError(self._error_parser.parse(answer, self._error_shape), "GetRecords")
        code = error_code(refused)
        if status >= 500 or code in TRANSIENT_CODES or _ERRORS.get(code) is ThrottledError:
            return self._client_records(iterator, limit)  # botocore's retries decide
        raise _translated(refused, "GetRecords") from refused

    def _client_records(self, iterator: str, limit: int) -> Page:
        """GetRecords through the whole client: its retries, then its errors, translated."""
        try:
            response: Mapping[str, Any] = self._client.get_records(
                ShardIterator=iterator, Limit=limit
            )
        except (ClientError, *_TRANSIENT) as error:
            raise _translated(error, "GetRecords") from error
        except MalformedResponseError as error:
            raise ThrottledError(f"GetRecords: {error}") from error
        return Page(
            response.get("Records", []),
            response.get("NextShardIterator"),
            wire_bytes=response.get(_WIRE_BYTES, 0),
            parse_s=response.get(_PARSE_S, 0.0),
        )


def _translated(error: Exception, call: str) -> Exception:
    """The reader's exception for ``error``; a fatal one as ``bridge.aws.AwsCallError``."""
    if isinstance(error, ReadTimeoutError):
        return TimedOutError(f"{call}: {error}")
    if isinstance(error, _TRANSIENT):
        return ThrottledError(f"{call}: {error}")
    assert isinstance(error, ClientError)
    code = error_code(error)
    message = error.response.get("Error", {}).get("Message", "")
    kind = _ERRORS.get(code)
    return translated(error, call) if kind is None else kind(f"{call}: {code}: {message}")


# -- the parse ----------------------------------------------------------------------------------


def _parse_get_records(
    response_dict: dict[str, Any],
    customized_response_dict: dict[str, Any],
    binaries: Binaries = Binaries.BYTES,
    **_: Any,
) -> None:
    """botocore's ``before-parse`` event: a 2xx body parsed here, botocore left ``{}``."""
    if response_dict["status_code"] >= 300:
        return  # an error: botocore's parser reads its code, and its retries act on it
    started = time.perf_counter()
    body: bytes = response_dict["body"]
    customized_response_dict.update(get_records_response(body, binaries))
    customized_response_dict[_WIRE_BYTES] = len(body)
    customized_response_dict[_PARSE_S] = time.perf_counter() - started
    response_dict["body"] = b"{}"


def _parse_get_shard_iterator(
    response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any
) -> None:
    if response_dict["status_code"] >= 300:
        return
    document = _json_object(response_dict["body"], "GetShardIterator")
    iterator = document.get("ShardIterator")
    if iterator is not None:
        if not isinstance(iterator, str):
            raise MalformedResponseError("GetShardIterator: ShardIterator is not a string")
        customized_response_dict["ShardIterator"] = iterator
    response_dict["body"] = b"{}"


def get_records_response(body: bytes, binaries: Binaries = Binaries.BYTES) -> dict[str, Any]:
    """A GetRecords response body as botocore's parser returns it (without ResponseMetadata;
    under ``Binaries.BASE64`` the images' binaries stay base64 text).

    Raises :class:`MalformedResponseError` unless the body is a JSON object whose ``Records``
    (if present) is a list of objects, each with a ``dynamodb`` object.
    """
    document = _json_object(body, "GetRecords")
    response: dict[str, Any] = {}
    records = document.get("Records")
    if records is not None:
        if type(records) is not list:
            raise MalformedResponseError("GetRecords: Records is not a list")
        # A typed binary is the member name "B" or "BS"; JSON spells the letter B only as
        # itself or as a \u escape. A body with neither has no binary to decode.
        if b'"B' in body or b"\\u" in body:
            images = binaries is Binaries.BYTES
            for record in records:
                _with_bytes(_stream_record(record), images)
        else:
            for record in records:
                _stream_record(record)
        response["Records"] = records
    if "NextShardIterator" in document:
        iterator = document["NextShardIterator"]
        if iterator is not None and not isinstance(iterator, str):
            raise MalformedResponseError("GetRecords: NextShardIterator is not a string")
        response["NextShardIterator"] = iterator
    return response


def _json_object(body: bytes, call: str) -> dict[str, Any]:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise MalformedResponseError(f"{call}: the response body is not JSON: {error}") from None
    if type(document) is not dict:
        raise MalformedResponseError(f"{call}: the response body is not a JSON object")
    return document


def _stream_record(record: Any) -> dict[str, Any]:
    """``record["dynamodb"]``, its ApproximateCreationDateTime turned into a datetime."""
    body = record.get("dynamodb") if type(record) is dict else None
    if type(body) is not dict:
        raise MalformedResponseError("GetRecords: a record without a dynamodb object")
    created = body.get("ApproximateCreationDateTime")
    if created is not None:
        if type(created) is not float and type(created) is not int:
            raise MalformedResponseError(
                f"GetRecords: ApproximateCreationDateTime is not epoch seconds: {created!r:.40}"
            )
        try:
            body["ApproximateCreationDateTime"] = dt.datetime.fromtimestamp(created, dt.UTC)
        except (OverflowError, OSError, ValueError) as error:
            raise MalformedResponseError(
                f"GetRecords: ApproximateCreationDateTime {created!r} is out of range: {error}"
            ) from None
    return body


def _with_bytes(body: dict[str, Any], images: bool) -> None:
    """B and BS of the record's Keys (and images) from base64 text to bytes, in place."""
    for name in ("Keys", "NewImage", "OldImage") if images else ("Keys",):
        image = body.get(name)
        if image is not None:
            _item_with_bytes(image)


_a2b = binascii.a2b_base64
"""What botocore's blob parser (``base64.b64decode``) calls for text."""


def _item_with_bytes(item: Any) -> None:
    if type(item) is not dict:
        raise MalformedResponseError("GetRecords: an image is not a JSON object")
    for value in item.values():
        _value_with_bytes(value)


def _value_with_bytes(value: Any) -> None:
    if type(value) is not dict:
        raise MalformedResponseError("GetRecords: an attribute value is not a JSON object")
    try:
        if "M" in value:
            _item_with_bytes(value["M"])
        elif "L" in value:
            for member in value["L"]:
                _value_with_bytes(member)
        elif "B" in value:
            value["B"] = _a2b(value["B"])
        elif "BS" in value:
            value["BS"] = [_a2b(member) for member in value["BS"]]
    except (TypeError, binascii.Error) as error:
        raise MalformedResponseError(f"GetRecords: a malformed binary value: {error}") from None
