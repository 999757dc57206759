"""The Elasticsearch adapter speaks the server's REST major: headers, auth, refusals."""

from __future__ import annotations

import pytest

from bridge.runtime.settings import ConfigError, SearchSettings
from consumers.search import elasticsearch as adapter


def test_major_8_media_types_replace_the_clients_own() -> None:
    headers = adapter._speaking(
        {"accept": "application/json", "content-type": "application/x-ndjson", "x-o": "keep"}, 8
    )
    assert headers == {
        "accept": "application/vnd.elasticsearch+json; compatible-with=8",
        "content-type": "application/vnd.elasticsearch+x-ndjson; compatible-with=8",
        "x-o": "keep",
    }


def test_the_clients_own_major_is_left_to_the_client() -> None:
    assert adapter._speaking({"accept": "application/json"}, adapter._CLIENT_MAJOR) == {
        "accept": "application/json"
    }


def test_the_api_key_goes_into_the_apikey_header_and_never_into_messages() -> None:
    client = adapter.ElasticsearchClient(
        SearchSettings(hosts=["https://es:9200"], api_key="ZW5jb2RlZDprZXk=")  # type: ignore[arg-type]
    )
    assert client._client._headers["authorization"] == "ApiKey ZW5jb2RlZDprZXk="
    assert "ZW5jb2RlZDprZXk=" not in client._auth


def test_a_401_names_the_endpoint_mechanism_and_setting_and_is_a_config_error() -> None:
    import elastic_transport
    import elasticsearch  # noqa: TID251 - builds the client's own error

    meta = elastic_transport.ApiResponseMeta(
        401,
        "1.1",
        elastic_transport.HttpHeaders(),
        0.0,
        elastic_transport.NodeConfig("https", "es", 9200),
    )
    error = elasticsearch.AuthenticationException(
        "unable to authenticate", meta, {"error": {"type": "security_exception"}}
    )
    refused = adapter._translate(error, "GET /", "https://es:9200", "API key (search.api_key)")
    assert isinstance(refused, ConfigError)
    assert "https://es:9200" in str(refused)
    assert "search.api_key" in str(refused)


@pytest.mark.parametrize("number", ["7.17.29", "10.0.0"])
def test_an_unsupported_major_is_refused_naming_the_supported_ones(number: str) -> None:
    client = adapter.ElasticsearchClient(SearchSettings(hosts=["http://es:9200"]))
    client._version = lambda: number  # type: ignore[method-assign]
    with pytest.raises(ConfigError, match=r"supports Elasticsearch 8\.x and 9\.x"):
        _ = client.server_major
