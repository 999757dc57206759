"""The Streams adapter's fast parse over the real client stack, against a real local HTTP server.

What the botocore path was relied on for still holds on this one: pages equal to botocore's
own parse, errors translated into the reader's tree by code, botocore's retries and timeouts,
credentials refreshed before they expire and used to sign. Every GetRecords test runs on both
of the adapter's paths: through the client (before any GetShardIterator) and direct (signed by
the client's signer, sent on its HTTP session, once a GetShardIterator showed the endpoint).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import socket
import string
from collections.abc import Callable, Iterator
from typing import Any

import boto3  # noqa: TID251 - the tests build the adapter's real client
import botocore.session  # noqa: TID251 - a credential provider of the test's own
import pytest
from botocore.auth import SigV4Auth  # noqa: TID251 - botocore's SigV4 is the signature oracle
from botocore.awsrequest import AWSRequest  # noqa: TID251 - the request the server received
from botocore.config import Config  # noqa: TID251 - a short read timeout for the timeout test
from botocore.credentials import (  # noqa: TID251 - refreshable credentials under test
    CredentialProvider,
    Credentials,
    RefreshableCredentials,
)
from botocore.model import StructureShape  # noqa: TID251 - botocore's parse is the oracle
from botocore.parsers import create_parser  # noqa: TID251 - botocore's parse is the oracle
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from bridge.aws import STREAMS_ATTEMPTS, AwsCallError, aws_clients, streams_config
from bridge.contract import ChangeEvent, Encoder, headers, kafka_key
from bridge.reader import (
    ExpiredIteratorError,
    IteratorRequest,
    IteratorType,
    ShardGoneError,
    ThrottledError,
    TimedOutError,
    TrimmedDataError,
)
from bridge.records import ShardSource, change_events
from bridge.runtime.settings import AwsSettings
from bridge.streams import Binaries, DynamoStreams, MalformedResponseError, get_records_response
from tests.unit.bridge.streams_http import (
    Reply,
    Script,
    error_reply,
    page_body,
    stream_record,
    streams_server,
    utc,
)

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2024-05-01T00:00:00.000"
SHARD = "shardId-00000001714564800000-00000001"
_shape = (
    botocore.session.get_session()
    .get_service_model("dynamodbstreams")
    .operation_model("GetRecords")
    .output_shape
)
assert _shape is not None
_OUTPUT: StructureShape = _shape


def botocore_parse(body: bytes) -> dict[str, Any]:
    """What botocore's own JSON parser makes of a GetRecords body (the oracle)."""
    parsed: dict[str, Any] = create_parser("json").parse(
        {"body": body, "headers": {}, "status_code": 200}, _OUTPUT
    )
    parsed.pop("ResponseMetadata", None)
    return parsed


class StaticProvider(CredentialProvider):
    METHOD = "dynabridge-test"

    def __init__(self, credentials: Any) -> None:
        super().__init__()
        self._credentials = credentials

    def load(self) -> Any:
        return self._credentials


def session_with(credentials: Any) -> boto3.session.Session:
    core = botocore.session.Session()
    core.get_component("credential_provider").insert_before("env", StaticProvider(credentials))
    return boto3.session.Session(botocore_session=core, region_name="us-east-1")


def static_session() -> boto3.session.Session:
    core = botocore.session.Session()
    core.set_credentials("AKIDSTATIC", "secret")
    return boto3.session.Session(botocore_session=core, region_name="us-east-1")


def adapter(url: str, session: boto3.session.Session | None = None) -> DynamoStreams:
    """The adapter on the client ``bridge run`` builds (same config, this endpoint)."""
    _, streams = aws_clients(AwsSettings(endpoint_url=url), session=session or static_session())
    return DynamoStreams(streams)


def primed(streams: DynamoStreams, script: Script) -> DynamoStreams:
    """``streams`` after a GetShardIterator (its GetRecords go direct from then on); the
    script forgets that request."""
    script.replies.insert(0, Reply(body=b'{"ShardIterator": "iterator-0"}'))
    streams.shard_iterator(ARN, SHARD, IteratorRequest(IteratorType.TRIM_HORIZON))
    with script.lock:
        script.seen.clear()
    return streams


@pytest.fixture(params=["client", "direct"])
def path(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make(script: Script, url: str, path: str) -> Callable[..., DynamoStreams]:
    """Builds the adapter on the path under test (optionally on a session of the test's)."""

    def build(session: boto3.session.Session | None = None) -> DynamoStreams:
        streams = adapter(url, session)
        return primed(streams, script) if path == "direct" else streams

    return build


def client_calls(streams: DynamoStreams, operation: str) -> list[str]:
    """Counts the calls of ``operation`` made through the whole client from now on."""
    calls: list[str] = []
    streams._client.meta.events.register(
        f"before-call.dynamodb-streams.{operation}", lambda **_: calls.append(operation)
    )
    return calls


@pytest.fixture
def script() -> Script:
    return Script()


@pytest.fixture
def url(script: Script) -> Iterator[str]:
    with streams_server(script) as endpoint:
        yield endpoint


# -- pages --------------------------------------------------------------------------------------


def mixed_image(i: int) -> dict[str, Any]:
    return {
        "pk": {"S": f"k{i}"},
        "big": {"N": "12345678901234567890123456789012345678"},
        "small": {"N": "-0.00000000000000000000000000000000000001"},
        "blob": {"B": bytes(range(256))},
        "blobs": {"BS": [b"\x00", b"\xff\xfe"]},
        "nested": {
            "M": {"l": {"L": [{"B": b"x"}, {"M": {"deep": {"BS": [b"y"]}}}, {"NULL": True}]}}
        },
        "text": {"S": 'caf\u00e9 \u2603 "quoted" \\ back'},
        "flags": {"L": [{"BOOL": True}, {"BOOL": False}]},
        "tags": {"SS": ["a", "b"]},
        "nums": {"NS": ["1", "2.5", "1E+10"]},
    }


def test_a_page_equals_botocores_parse_of_the_same_body(
    script: Script, url: str, make: Callable[..., DynamoStreams]
) -> None:
    records = [stream_record(i, mixed_image(i), 1714564800.0 + i) for i in range(1, 4)]
    body = page_body(records, "iterator-2")
    plain = aws_clients(AwsSettings(endpoint_url=url), session=static_session())[1]
    streams = make()
    script.default = Reply(body=body)
    expected = plain.get_records(ShardIterator="iterator-1", Limit=1000)  # botocore, no hook
    page = streams.records("iterator-1", 1000)
    assert page.records == expected["Records"]
    assert page.next_iterator == expected["NextShardIterator"] == "iterator-2"
    assert page.wire_bytes == len(body)
    assert page.records[0]["dynamodb"]["NewImage"]["blob"]["B"] == bytes(range(256))
    assert page.records[0]["dynamodb"]["ApproximateCreationDateTime"] == utc(1714564801.0)


def test_the_hook_leaves_describe_stream_to_botocore(script: Script, url: str) -> None:
    described = {
        "StreamDescription": {
            "StreamArn": ARN,
            "StreamStatus": "ENABLED",
            "CreationRequestDateTime": 1714564800.5,
            "Shards": [{"ShardId": SHARD, "SequenceNumberRange": {}}],
        }
    }
    script.default = Reply(body=json.dumps(described).encode())
    streams = adapter(url)
    response = streams._client.describe_stream(StreamArn=ARN)
    created = response["StreamDescription"]["CreationRequestDateTime"]
    assert isinstance(created, dt.datetime)  # botocore's parser ran: a timestamp, not a number


def test_a_closed_shards_last_page_has_no_next_iterator(
    script: Script, make: Callable[..., DynamoStreams]
) -> None:
    script.default = Reply(body=page_body([stream_record(1, {"pk": {"S": "a"}})], None))
    page = make().records("iterator-1", 10)
    assert page.next_iterator is None
    assert len(page.records) == 1


def test_the_request_carries_the_iterator_and_limit(
    script: Script, make: Callable[..., DynamoStreams]
) -> None:
    script.default = Reply(body=page_body([]))
    make().records("iterator-7", 250)
    assert script.seen[0].target == "DynamoDBStreams_20120810.GetRecords"
    assert script.seen[0].body == {"ShardIterator": "iterator-7", "Limit": 250}
    assert script.seen[0].headers["Content-Type"] == "application/x-amz-json-1.0"


def test_once_an_iterator_was_asked_for_get_records_skip_the_client(
    script: Script, url: str
) -> None:
    streams = adapter(url)
    calls = client_calls(streams, "GetRecords")
    script.default = Reply(body=page_body([]))
    streams.records("iterator-1", 10)
    assert calls == ["GetRecords"]  # no endpoint known yet: through the client
    primed(streams, script)
    script.default = Reply(body=page_body([stream_record(1, {"pk": {"S": "a"}})]))
    assert len(streams.records("iterator-2", 10).records) == 1
    assert calls == ["GetRecords"]
    assert script.targets() == ["GetRecords"]


def test_a_direct_request_carries_a_valid_sigv4_signature_of_what_was_sent(
    script: Script, url: str
) -> None:
    """The oracle is botocore's SigV4 computed anew over the request as the server received
    it: method, path, headers, body, the credentials' secret."""
    core = botocore.session.Session()
    core.set_credentials("AKIDSIGNED", "the-secret", "the-token")
    streams = primed(adapter(url, boto3.session.Session(botocore_session=core)), script)
    script.default = Reply(body=page_body([]))
    streams.records("iterator-5", 100)
    seen = script.seen[0]
    authorization = seen.authorization
    scope = authorization.split("Credential=", 1)[1].split(",", 1)[0]
    assert scope.split("/")[0] == "AKIDSIGNED"
    assert scope.split("/")[2:] == ["us-east-1", "dynamodb", "aws4_request"]
    signed = authorization.split("SignedHeaders=", 1)[1].split(",", 1)[0].split(";")
    assert {"host", "x-amz-date", "x-amz-target", "x-amz-security-token"} <= set(signed)
    received = AWSRequest(
        "POST",
        url + seen.path,
        {name: value for name, value in seen.headers.items() if name.lower() in signed},
        seen.raw,
    )
    signer = SigV4Auth(
        Credentials("AKIDSIGNED", "the-secret", "the-token"), "dynamodb", "us-east-1"
    )
    received.context["timestamp"] = seen.headers["X-Amz-Date"]
    canonical = signer.canonical_request(received)
    expected = signer.signature(signer.string_to_sign(received, canonical), received)
    assert authorization.endswith(f"Signature={expected}")


def test_shard_iterator_requests_and_parses(script: Script, url: str) -> None:
    script.default = Reply(body=b'{"ShardIterator": "iterator-9"}')
    request = IteratorRequest(IteratorType.AFTER_SEQUENCE_NUMBER, "000000000000000000042")
    assert adapter(url).shard_iterator(ARN, SHARD, request) == "iterator-9"
    assert script.seen[0].body == {
        "StreamArn": ARN,
        "ShardId": SHARD,
        "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
        "SequenceNumber": "000000000000000000042",
    }


def test_a_shard_iterator_response_without_an_iterator_means_the_shard_is_gone(
    script: Script, url: str
) -> None:
    script.default = Reply(body=b"{}")
    with pytest.raises(ShardGoneError):
        adapter(url).shard_iterator(ARN, SHARD, IteratorRequest(IteratorType.TRIM_HORIZON))


# -- errors: the same table as the botocore path ------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status", "kind", "attempts"),
    [
        ("ExpiredIteratorException", 400, ExpiredIteratorError, 1),
        ("TrimmedDataAccessException", 400, TrimmedDataError, 1),
        ("ResourceNotFoundException", 400, ShardGoneError, 1),
        # Throttling and 5xx: botocore retries them first, then the reader backs off.
        ("LimitExceededException", 400, ThrottledError, STREAMS_ATTEMPTS),
        ("ThrottlingException", 400, ThrottledError, STREAMS_ATTEMPTS),
        ("InternalServerError", 500, ThrottledError, STREAMS_ATTEMPTS),
        ("ServiceUnavailable", 503, ThrottledError, STREAMS_ATTEMPTS),
    ],
)
def test_error_codes_become_the_readers_errors(
    script: Script,
    make: Callable[..., DynamoStreams],
    path: str,
    code: str,
    status: int,
    kind: type[Exception],
    attempts: int,
) -> None:
    streams = make()
    script.default = error_reply(code, status, "the service says so")
    with pytest.raises(kind, match=f"GetRecords: {code}: the service says so") as raised:
        streams.records("iterator-1", 1000)
    assert type(raised.value) is kind
    # Direct, an answer botocore retries is asked again through the client: its attempts.
    retried = path == "direct" and attempts > 1
    assert script.targets() == ["GetRecords"] * (attempts + 1 if retried else attempts)


def test_an_unknown_error_is_fatal_and_names_the_code(
    script: Script, make: Callable[..., DynamoStreams]
) -> None:
    streams = make()
    script.default = error_reply("AccessDeniedException", 400, "not allowed")
    with pytest.raises(AwsCallError, match="AccessDeniedException not allowed") as raised:
        streams.records("iterator-1", 1000)
    assert raised.value.code == "AccessDeniedException"
    assert raised.value.status == 400
    assert script.targets() == ["GetRecords"]


def test_shard_iterator_errors_are_translated_too(script: Script, url: str) -> None:
    script.default = error_reply("TrimmedDataAccessException")
    with pytest.raises(TrimmedDataError, match=f"GetShardIterator {SHARD}"):
        adapter(url).shard_iterator(ARN, SHARD, IteratorRequest(IteratorType.TRIM_HORIZON))


def test_a_5xx_then_a_page_is_retried_by_botocore(
    script: Script, make: Callable[..., DynamoStreams]
) -> None:
    streams = make()
    script.replies = [Reply(500, b"<html>bad gateway</html>")]
    script.default = Reply(body=page_body([stream_record(1, {"pk": {"S": "a"}})]))
    page = streams.records("iterator-1", 1000)
    assert len(page.records) == 1
    assert script.targets() == ["GetRecords", "GetRecords"]


def test_a_malformed_success_body_is_a_transient_failure_not_a_closed_shard(
    script: Script, make: Callable[..., DynamoStreams]
) -> None:
    streams = make()
    script.default = Reply(body=b'{"Records": [')
    with pytest.raises(ThrottledError, match="not JSON"):
        streams.records("iterator-1", 1000)


def test_a_read_timeout_is_timed_out(script: Script, url: str, path: str) -> None:
    """Through the client after botocore's attempts; direct at once (the same page asked
    again would only wait again, and the reader asks for a smaller one)."""
    config = streams_config().merge(Config(read_timeout=0.3, connect_timeout=0.3))
    client = static_session().client("dynamodbstreams", endpoint_url=url, config=config)
    streams = DynamoStreams(client)
    if path == "direct":
        primed(streams, script)
    script.default = Reply(body=page_body([]), delay_s=1.5)
    with pytest.raises(TimedOutError, match="GetRecords"):
        streams.records("iterator-1", 1000)
    assert script.targets() == ["GetRecords"] * (1 if path == "direct" else STREAMS_ATTEMPTS)


def test_a_dropped_connection_is_transient(
    script: Script, make: Callable[..., DynamoStreams], path: str
) -> None:
    streams = make()
    script.default = Reply(drop=True)
    with pytest.raises(ThrottledError) as raised:
        streams.records("iterator-1", 1000)
    assert type(raised.value) is ThrottledError
    # Direct, a failed connection is asked again through the client: its attempts.
    assert len(script.seen) == STREAMS_ATTEMPTS + (1 if path == "direct" else 0)


def test_a_dropped_keep_alive_connection_is_asked_again_and_read(
    script: Script, make: Callable[..., DynamoStreams]
) -> None:
    streams = make()
    script.replies = [Reply(drop=True)]
    script.default = Reply(body=page_body([stream_record(1, {"pk": {"S": "a"}})]))
    assert len(streams.records("iterator-1", 1000).records) == 1
    assert script.targets() == ["GetRecords", "GetRecords"]


def test_an_endpoint_nobody_listens_on_is_transient() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ThrottledError, match="Could not connect"):
        adapter(f"http://127.0.0.1:{port}").records("iterator-1", 1000)


# -- credentials --------------------------------------------------------------------------------


def access_key_of(authorization: str) -> str:
    """The access key a SigV4 Authorization header was signed with."""
    credential = authorization.split("Credential=", 1)[1]
    return credential.split("/", 1)[0]


class Clock:
    """The credentials' idea of now, moved by the test."""

    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


def refreshable(
    clock: Clock, first: str, lifetime: dt.timedelta, refreshed: list[str]
) -> tuple[Any, list[str]]:
    """Credentials ``first`` valid for ``lifetime``, then refreshing to ``refreshed`` in turn
    (each valid for an hour); also returns the keys handed out by refreshes."""
    handed: list[str] = []

    def refresh() -> dict[str, str]:
        key = refreshed.pop(0)
        handed.append(key)
        return {
            "access_key": key,
            "secret_key": "secret-" + key,
            "token": "token-" + key,
            "expiry_time": (clock() + dt.timedelta(hours=1)).isoformat(),
        }

    credentials = RefreshableCredentials(
        first, "secret", "token", clock() + lifetime, refresh, "test", time_fetcher=clock
    )
    return credentials, handed


def test_expired_credentials_are_refreshed_before_signing(
    script: Script, make: Callable[..., DynamoStreams]
) -> None:
    clock = Clock()
    credentials, handed = refreshable(clock, "AKIDEXPIRED", -dt.timedelta(minutes=1), ["AKIDNEW"])
    streams = make(session_with(credentials))
    script.default = Reply(body=page_body([]))
    streams.records("iterator-1", 1000)
    streams.records("iterator-2", 1000)
    assert handed == ["AKIDNEW"]
    assert [access_key_of(s.authorization) for s in script.seen] == ["AKIDNEW", "AKIDNEW"]


def test_credentials_about_to_expire_are_refreshed_between_calls(
    script: Script, make: Callable[..., DynamoStreams]
) -> None:
    clock = Clock()
    credentials, handed = refreshable(clock, "AKIDFIRST", dt.timedelta(hours=1), ["AKIDSECOND"])
    streams = make(session_with(credentials))
    script.default = Reply(body=page_body([]))
    streams.records("iterator-1", 1000)
    clock.now += dt.timedelta(minutes=55)  # botocore refreshes with < 10 minutes left
    streams.records("iterator-2", 1000)
    assert handed == ["AKIDSECOND"]
    assert [access_key_of(s.authorization) for s in script.seen] == ["AKIDFIRST", "AKIDSECOND"]


# -- the parse, property-tested against botocore's --------------------------------------------

_names = st.text(string.ascii_letters + "_-\u00e9", min_size=1, max_size=6)
_numbers = st.one_of(
    st.integers(-(10**38) + 1, 10**38 - 1).map(str),
    st.from_regex(r"-?[1-9][0-9]{0,37}(\.[0-9]{1,20})?(E[+-]?[0-9]{1,3})?", fullmatch=True),
)
_scalars = st.one_of(
    st.builds(lambda s: {"S": s}, st.text(max_size=20)),
    st.builds(lambda n: {"N": n}, _numbers),
    st.builds(lambda b: {"B": b}, st.binary(max_size=40)),
    st.builds(lambda b: {"BOOL": b}, st.booleans()),
    st.just({"NULL": True}),
    st.builds(lambda s: {"SS": s}, st.lists(st.text(max_size=8), min_size=1, max_size=3)),
    st.builds(lambda s: {"NS": s}, st.lists(_numbers, min_size=1, max_size=3)),
    st.builds(lambda s: {"BS": s}, st.lists(st.binary(max_size=8), min_size=1, max_size=3)),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.builds(lambda m: {"M": m}, st.dictionaries(_names, inner, max_size=4)),
        st.builds(lambda m: {"L": m}, st.lists(inner, max_size=4)),
    ),
    max_leaves=12,
)
_items = st.dictionaries(_names, _values, max_size=5)
_keys = st.fixed_dictionaries(
    {
        # A primary key: a non-empty S or B, or an N within DynamoDB's precision.
        "pk": st.one_of(
            st.builds(lambda b: {"B": b}, st.binary(min_size=1, max_size=8)),
            st.builds(lambda s: {"S": s}, st.text(min_size=1, max_size=20)),
            st.builds(lambda n: {"N": str(n)}, st.integers(-(10**38) + 1, 10**38 - 1)),
        )
    }
)


def _b64(value: Any) -> Any:
    if isinstance(value, dict):
        return {name: _b64(member) for name, member in value.items()}
    if isinstance(value, list):
        return [_b64(member) for member in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return value


@st.composite
def _records(draw: Callable[..., Any]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "ApproximateCreationDateTime": draw(
            st.one_of(st.integers(0, 4_000_000_000), st.floats(0, 4e9).map(lambda f: round(f, 3)))
        ),
        "Keys": _b64(draw(_keys)),
        "SequenceNumber": str(draw(st.integers(10**20, 10**40 - 1))),
        "SizeBytes": draw(st.integers(1, 400_000)),
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    for image in ("NewImage", "OldImage"):
        if draw(st.booleans()):
            body[image] = _b64(draw(_items))
    record: dict[str, Any] = {
        "eventID": draw(st.text(string.hexdigits, min_size=1, max_size=32)),
        "eventName": draw(st.sampled_from(["INSERT", "MODIFY", "REMOVE"])),
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": body,
    }
    if draw(st.booleans()):
        record["userIdentity"] = {"PrincipalId": "dynamodb.amazonaws.com", "Type": "Service"}
    return record


@hypothesis_settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(
    records=st.lists(_records(), max_size=5),
    next_iterator=st.one_of(st.none(), st.text(string.ascii_letters, min_size=1, max_size=20)),
    ascii_only=st.booleans(),
)
def test_the_parse_equals_botocores_on_generated_pages(
    records: list[dict[str, Any]], next_iterator: str | None, ascii_only: bool
) -> None:
    document: dict[str, Any] = {"Records": records}
    if next_iterator is not None:
        document["NextShardIterator"] = next_iterator
    # ensure_ascii spells every non-ASCII letter as a \u escape, as a service might.
    body = json.dumps(document, ensure_ascii=ascii_only).encode()
    expected = botocore_parse(body)
    assert get_records_response(body) == expected
    # And what the bridge publishes from either is the same, to the byte, with the images'
    # binaries decoded or left as the base64 text they came as.
    source = ShardSource("orders", ARN, SHARD)
    published = _published(change_events(expected["Records"], source, 0)[0])
    for binaries in Binaries:
        fast = change_events(get_records_response(body, binaries)["Records"], source, 0)[0]
        assert _published(fast) == published, binaries


def _published(events: list[ChangeEvent]) -> list[tuple[bytes, bytes, object]]:
    encoder = Encoder()
    return [(kafka_key(e.keys), encoder.encode(e), headers(e)) for e in events]


def test_a_binary_tag_spelled_with_an_escape_is_decoded_like_botocore_does() -> None:
    body = (
        b'{"Records": [{"dynamodb": {"ApproximateCreationDateTime": 1714564800, '
        b'"Keys": {"pk": {"\\u0042": "AAE="}}, "NewImage": {"s": {"\\u0042S": ["/w=="]}}}}]}'
    )
    parsed = get_records_response(body)
    assert parsed == botocore_parse(body)
    assert parsed["Records"][0]["dynamodb"]["Keys"]["pk"]["B"] == b"\x00\x01"


def test_the_bridges_mode_holds_on_either_path(script: Script, url: str, path: str) -> None:
    _, client = aws_clients(AwsSettings(endpoint_url=url), session=static_session())
    streams = DynamoStreams(client, binaries=Binaries.BASE64)
    if path == "direct":
        primed(streams, script)
    script.default = Reply(body=page_body([stream_record(1, {"pk": {"B": b"\x00\x01"}})]))
    (record,) = streams.records("iterator-1", 10).records
    assert record["dynamodb"]["Keys"] == {"pk": {"B": b"\x00\x01"}}
    assert record["dynamodb"]["NewImage"] == {"pk": {"B": "AAE="}}


def test_the_bridges_mode_decodes_keys_and_leaves_image_binaries_as_sent() -> None:
    body = page_body([stream_record(1, {"pk": {"B": b"\x00\x01"}, "b": {"BS": [b"\xff"]}})])
    (record,) = get_records_response(body, Binaries.BASE64)["Records"]
    assert record["dynamodb"]["Keys"] == {"pk": {"B": b"\x00\x01"}}
    assert record["dynamodb"]["NewImage"] == {"pk": {"B": "AAE="}, "b": {"BS": ["/w=="]}}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[]", "not a JSON object"),
        (b'{"Records": {}}', "Records is not a list"),
        (b'{"Records": [1]}', "without a dynamodb object"),
        (b'{"Records": [{"dynamodb": {"ApproximateCreationDateTime": "x"}}]}', "epoch seconds"),
        (b'{"Records": [{"dynamodb": {"Keys": {"k": {"B": "a"}}}}]}', "binary"),
        (b'{"Records": [{"dynamodb": {"Keys": {"k": {"B": 1}}}}]}', "binary"),
        (b'{"Records": [{"dynamodb": {"NewImage": {"k": "B"}}}]}', "attribute value"),
        (b'{"NextShardIterator": 5}', "NextShardIterator"),
    ],
)
def test_malformed_bodies_are_refused_with_a_reason(body: bytes, reason: str) -> None:
    with pytest.raises(MalformedResponseError, match=reason):
        get_records_response(body)
