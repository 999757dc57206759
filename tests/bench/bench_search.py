"""The raw-client limit: docs/s of the engine client's own ``streaming_bulk`` helper.

The indexer benchmark divides its own docs/s by :func:`raw_client_docs_per_s` on the same
documents (the bodies the indexer sends: ``_source`` and typed fields), into an index with the
same managed mapping, same node, same run. Run as a script for the search side alone (events ->
actions -> ``SearchBackend.bulk``) against that limit::

    python -m tests.bench.bench_search --engine elasticsearch --docs 20000 --rounds 5
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import elasticsearch  # noqa: TID251 - the benchmark's reference is the raw client
import opensearchpy  # noqa: TID251
from elasticsearch import helpers  # noqa: TID251
from opensearchpy import helpers as os_helpers  # noqa: TID251

from bridge.contract import ChangeEvent, EventName, Item
from bridge.runtime.settings import SearchBackend as SearchBackendName
from bridge.runtime.settings import SearchSettings
from consumers.indexer.backend import build_backend
from consumers.indexer.documents import build_action, doc_id, index_name
from consumers.indexer.templates import index_body

ENGINE_URLS = {
    SearchBackendName.ELASTICSEARCH: "http://127.0.0.1:9200",
    SearchBackendName.OPENSEARCH: "http://127.0.0.1:9201",
}
CHUNK_DOCS = 1000
"""= indexer.batch_max_docs default, so both sides send bulks of the same size."""
CHUNK_BYTES = 5 * 1024 * 1024
"""= indexer.batch_max_bytes default."""


@dataclass(frozen=True, slots=True)
class Measurement:
    docs_per_s: float
    """From before the first document is serialized to the last answer."""
    cpu_us_per_doc: float
    """CPU of this process (serialization, HTTP client, response parsing) per document: the
    part of the cost that is ours, steadier than docs/s on a shared machine."""
    first_to_last_docs_per_s: float = 0.0
    """From the first bulk request leaving to the last answer: what the indexer benchmark's
    ``first_to_last`` measures on the indexer's side (its first bulk sent, last change settled)."""


def bodies(events: Sequence[ChangeEvent]) -> list[dict[str, Any]]:
    """What the indexer sends for each event into a managed index: ``_source`` + ``ddb``."""
    out = []
    for event in events:
        action = build_action(event, "")
        out.append({**(action.document or {}), "ddb": action.typed or {}})
    return out


def raw_client_docs_per_s(
    url: str,
    documents: Sequence[dict[str, Any]],
    ids: Sequence[str] | None = None,
    versions: Sequence[int] | None = None,
    chunk_docs: int = CHUNK_DOCS,
    engine: SearchBackendName = SearchBackendName.ELASTICSEARCH,
) -> float:
    """Index ``documents`` with the raw client's bulk helper into a fresh index; docs/s.

    Give ``ids`` and ``versions`` (external_gte) to make the engine do the indexer's work: a
    version lookup per id instead of the append-only fast path of auto ids. The index gets the
    managed indices' settings; it is created before and deleted after the timed part.
    """
    return measure_raw_client(url, documents, ids, versions, chunk_docs, engine).docs_per_s


def measure_raw_client(
    url: str,
    documents: Sequence[dict[str, Any]],
    ids: Sequence[str] | None = None,
    versions: Sequence[int] | None = None,
    chunk_docs: int = CHUNK_DOCS,
    engine: SearchBackendName = SearchBackendName.ELASTICSEARCH,
) -> Measurement:
    """:func:`raw_client_docs_per_s` with the client-side CPU per document."""
    index = f"bench-raw-{uuid.uuid4().hex[:8]}"
    _create(url, index, engine)
    if engine is SearchBackendName.OPENSEARCH:
        client: Any = opensearchpy.OpenSearch(url, timeout=120)
        bulk: Any = os_helpers.streaming_bulk
    else:
        client = elasticsearch.Elasticsearch(url, request_timeout=120)
        bulk = helpers.streaming_bulk
    first_request = _first_request_clock(client)
    try:
        start, cpu = time.perf_counter(), time.process_time()
        for ok, item in bulk(
            client,
            _helper_actions(index, documents, ids, versions),
            chunk_size=chunk_docs,
            max_chunk_bytes=CHUNK_BYTES,
            raise_on_error=False,
        ):
            if not ok:
                raise RuntimeError(f"the reference run failed an item: {item}")
        end = time.perf_counter()
        elapsed, cpu = end - start, time.process_time() - cpu
    finally:
        _http("DELETE", f"{url}/{index}")
        client.close()
    count = len(documents)
    return Measurement(
        count / elapsed, cpu / count * 1e6, count / max(end - first_request[0], 1e-9)
    )


def _first_request_clock(client: Any) -> list[float]:
    """Notes (in a one-element list) when the client's first ``_bulk`` leaves: the transport,
    which every client copy (``client.options()``) shares, is wrapped on this instance."""
    seen = [float("inf")]
    transport = client.transport
    perform = transport.perform_request

    def timed(method: str, target: str, *args: Any, **kwargs: Any) -> Any:
        if "_bulk" in target:
            seen[0] = min(seen[0], time.perf_counter())
        return perform(method, target, *args, **kwargs)

    transport.perform_request = timed
    return seen


def _helper_actions(
    index: str,
    documents: Sequence[dict[str, Any]],
    ids: Sequence[str] | None,
    versions: Sequence[int] | None,
) -> Iterator[dict[str, Any]]:
    for position, document in enumerate(documents):
        action: dict[str, Any] = {"_index": index, "_source": document}
        if ids is not None:
            action["_id"] = ids[position]
        if versions is not None:
            action["version"] = versions[position]
            action["version_type"] = "external_gte"
        yield action


def measure_search_side(
    url: str,
    events: Sequence[ChangeEvent],
    engine: SearchBackendName = SearchBackendName.ELASTICSEARCH,
) -> Measurement:
    """events -> ``build_action`` -> ``SearchBackend.bulk`` in chunks: the indexer minus Kafka."""
    prefix = f"bench-side-{uuid.uuid4().hex[:8]}-"
    settings = SearchSettings(
        backend=engine, hosts=[url], index_prefix=prefix, request_timeout_s=120
    )
    backend = build_backend(settings)
    backend.ensure_index(index_name(prefix, events[0].table))  # as for the raw client: untimed
    try:
        start, cpu = time.perf_counter(), time.process_time()
        for first in range(0, len(events), CHUNK_DOCS):
            actions = [build_action(event, prefix) for event in events[first : first + CHUNK_DOCS]]
            for result in backend.bulk(actions):
                if result.status >= 300:
                    raise RuntimeError(f"the search side failed an item: {result}")
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    finally:
        backend.close()
        _http("DELETE", f"{url}/{prefix}*")
        _http("DELETE", f"{url}/_index_template/dynabridge.{prefix}*")
    return Measurement(len(events) / elapsed, cpu / len(events) * 1e6)


# ------------------------------------------------------------------------------ workload


def sample_item(number: int, rng: random.Random, turn: int = 0) -> Item:
    """An order-like item of ~20 attributes (~1 KB of DynamoDB JSON): a nested map, a list of
    maps, a set, numbers mixing integers and decimals, a list of mixed types, and an attribute
    whose type drifts between items and between changes (N, S, M)."""
    drift: list[dict[str, Any]] = [
        {"N": str(rng.randint(1, 999))},
        {"S": f"level-{rng.randint(1, 9)}"},
        {"M": {"value": {"N": str(rng.randint(1, 99))}, "unit": {"S": "pt"}}},
    ]
    return {
        "pk": {"S": f"customer#{number % 5000}"},
        "sk": {"S": f"order#{number:09d}"},
        "status": {"S": rng.choice(["NEW", "PAID", "SHIPPED", "DELIVERED"])},
        "total": {"N": rng.choice([str(rng.randint(1, 999)), f"{rng.randint(100, 99999) / 100}"])},
        "items_count": {"N": str(rng.randint(1, 20))},
        "created_at": {"N": str(1_700_000_000 + number)},
        "gift": {"BOOL": rng.random() < 0.1},
        "note": {"NULL": True},
        "tags": {"SS": rng.sample(["red", "blue", "green", "xl", "promo", "eu"], 3)},
        "ratings": {"NS": ["1", "2.5", str(rng.randint(3, 9))]},
        "score": drift[(number + turn) % 3],
        "attrs": {"L": [{"S": "fragile"}, {"N": str(rng.randint(1, 9))}, {"M": {"k": {"S": "v"}}}]},
        "address": {
            "M": {
                "street": {"S": f"{rng.randint(1, 999)} Main Street"},
                "city": {"S": rng.choice(["Lyon", "Berlin", "Austin", "Osaka"])},
                "zip": {"S": f"{rng.randint(10000, 99999)}"},
                "geo": {"M": {"lat": {"N": "45.764043"}, "lon": {"N": "4.835659"}}},
            }
        },
        "lines": {
            "L": [
                {
                    "M": {
                        "sku": {"S": f"SKU-{rng.randint(1, 10**6)}"},
                        "qty": {"N": str(rng.randint(1, 5))},
                        "price": {"N": f"{rng.randint(100, 9999) / 100}"},
                    }
                }
                for _ in range(3)
            ]
        },
        "description": {"S": "lorem ipsum dolor sit amet " * 4},
    }


def sample_events(count: int, seed: int = 7) -> list[ChangeEvent]:
    """MODIFY events carrying both images (the previous change's as the old one)."""
    rng = random.Random(seed)
    events = []
    for number in range(count):
        old, item = sample_item(number, rng, 0), sample_item(number, rng, 1)
        events.append(
            ChangeEvent(
                table="Orders",
                event_name=EventName.MODIFY,
                event_id=str(number),
                stream_arn="arn:aws:dynamodb:us-east-1:000000000000:table/Orders/stream/x",
                shard_id="shardId-0",
                sequence_number=str(10**20 + number),
                approximate_creation_time_ms=1_700_000_000_000,
                version=1_700_000_000_000_000 + number,
                keys={"pk": item["pk"], "sk": item["sk"]},
                new_image=item,
                old_image=old,
            )
        )
    return events


def _create(url: str, index: str, engine: SearchBackendName) -> None:
    """The index with the managed mapping, as the indexer's template gives its indices."""
    body = index_body(SearchSettings(backend=engine), engine)
    status = _http("PUT", f"{url}/{index}", body)
    if status >= 300:
        raise RuntimeError(f"creating {index}: HTTP {status}")


def _http(method: str, url: str, body: dict[str, Any] | None = None) -> int:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - local stack
    request.add_header("content-type", "application/json")
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
        return int(response.status)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--engine", choices=["elasticsearch", "opensearch"], default="elasticsearch"
    )
    parser.add_argument("--url", default=None, help="default: the local stack's engine")
    parser.add_argument("--docs", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    engine = SearchBackendName(args.engine)
    url = args.url or ENGINE_URLS[engine]
    events = sample_events(args.docs)
    documents = bodies(events)
    ids = [doc_id(event.keys) for event in events]
    versions = [event.version for event in events]
    raw, side = [], []
    for _ in range(args.rounds):  # interleaved, so load on the shared machine hits both alike
        raw.append(measure_raw_client(url, documents, ids, versions, engine=engine))
        side.append(measure_search_side(url, events, engine))
    for name, runs in (("raw helper ", raw), ("search side", side)):
        rates = [run.docs_per_s for run in runs]
        cpu = statistics.median(run.cpu_us_per_doc for run in runs)
        print(
            f"{name} docs/s: median {statistics.median(rates):7.0f} (runs {_runs(rates)}); "
            f"client CPU {cpu:5.1f} us/doc"
        )
    ratio = statistics.median(r.docs_per_s for r in side) / statistics.median(
        r.docs_per_s for r in raw
    )
    print(f"ratio search side / raw helper (medians): {ratio:.2f}")


def _runs(values: list[float]) -> str:
    return " ".join(f"{value:.0f}" for value in values)


if __name__ == "__main__":
    main()
