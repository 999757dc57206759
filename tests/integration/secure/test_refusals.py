"""A refused credential or an untrusted certificate ends the process (or the operator command)
with exit 2 and one line naming the endpoint, the mechanism and the setting to fix, within a
deadline: never a retry loop that looks alive. No secret is printed, not even a wrong one."""

from __future__ import annotations

from typing import Any

import pytest

from dynabridge.devstack import secure as profile
from dynabridge.devstack.client_config import KafkaAuth, SearchAuth
from dynabridge.devstack.config import StackConfig
from tests.integration.secure.conftest import MakeRun
from tests.integration.secure.harness import SecureRun, secret_strings

DEADLINE_S = 90.0
"""A refusal is seen within seconds; the rest is the loaded machine's process start."""
WRONG = "wrong-0f6c1d2e9a"


def _case(
    config: StackConfig, name: str
) -> tuple[KafkaAuth, SearchAuth, dict[str, Any], dict[str, str]]:
    """(kafka, search, file overrides, environment overrides) of one refusal."""
    tls = profile.tls(config)
    sasl, mtls = KafkaAuth.SASL, KafkaAuth.MTLS
    es, es_key, opensearch = SearchAuth.ES_BASIC, SearchAuth.ES_API_KEY, SearchAuth.OPENSEARCH_BASIC
    cases: dict[str, tuple[KafkaAuth, SearchAuth, dict[str, Any], dict[str, str]]] = {
        "kafka-sasl-password": (sasl, es, {}, {"DYNABRIDGE_KAFKA__SASL_PASSWORD": WRONG}),
        "kafka-untrusted-broker": (sasl, es, {"kafka": {"ssl_ca_location": str(tls.other_ca)}}, {}),
        "kafka-untrusted-client": (
            mtls, es,
            {"kafka": {
                "ssl_certificate_location": str(tls.rogue_client_cert),
                "ssl_key_location": str(tls.rogue_client_key),
            }},
            {},
        ),
        "es-password": (sasl, es, {}, {"DYNABRIDGE_SEARCH__PASSWORD": WRONG}),
        "es-api-key": (sasl, es_key, {}, {"DYNABRIDGE_SEARCH__API_KEY": "ZHluYWJyaWRnZTp" + WRONG}),
        "es-untrusted": (sasl, es, {"search": {"ca_certs": str(tls.other_ca)}}, {}),
        "opensearch-password": (sasl, opensearch, {}, {"DYNABRIDGE_SEARCH__PASSWORD": WRONG}),
        "opensearch-untrusted": (sasl, opensearch, {"search": {"ca_certs": str(tls.other_ca)}}, {}),
    }  # fmt: skip
    return cases[name]


def _expected(config: StackConfig) -> dict[str, tuple[str, list[str]]]:
    """case -> (process, what the one line must name), on the stack's own ports."""
    sasl = f"kafka 127.0.0.1:{config.kafka_secure_sasl_port}"
    mtls = f"kafka 127.0.0.1:{config.kafka_secure_mtls_port}"
    es = f"https://127.0.0.1:{config.es_secure_port}"
    opensearch = f"https://127.0.0.1:{config.opensearch_secure_port}"
    return {
        "kafka-sasl-password": ("bridge", [sasl, "SASL_SSL SCRAM-SHA-512", "kafka.sasl_password"]),
        "kafka-untrusted-broker": ("index", [sasl, "not trusted", "kafka.ssl_ca_location"]),
        "kafka-untrusted-client": ("index", [mtls, "(SSL)", "kafka.ssl_certificate_location"]),
        "es-password": ("index", [es, "basic auth", "search.password"]),
        "es-api-key": ("index", [es, "API key", "search.api_key"]),
        "es-untrusted": ("index", [es, "TLS", "search.ca_certs"]),
        "opensearch-password": ("index", [opensearch, "basic auth", "search.password"]),
        "opensearch-untrusted": ("index", [opensearch, "TLS", "search.ca_certs"]),
    }


CASES = [
    "kafka-sasl-password", "kafka-untrusted-broker", "kafka-untrusted-client", "es-password",
    "es-api-key", "es-untrusted", "opensearch-password", "opensearch-untrusted",
]  # fmt: skip


def _refused_line(output: str, names: list[str]) -> list[str]:
    return [line for line in output.splitlines() if all(n in line for n in names)]


def _no_secret(run: SecureRun, printed: str) -> None:
    for secret in [*secret_strings(run.secrets), WRONG]:
        assert secret not in printed, "a secret appears in the output"


@pytest.mark.parametrize("case", CASES)
def test_a_refusal_ends_the_process_with_exit_2_and_one_line(
    make_run: MakeRun, secure_stack: StackConfig, case: str
) -> None:
    kafka, search, overrides, env = _case(secure_stack, case)
    run = make_run(kafka, search, overrides)
    run.env_overrides |= env
    role, names = _expected(secure_stack)[case]
    process, _ = run.start(role)
    code = run.wait_exit(process, DEADLINE_S)
    output = run.log_of(process)
    assert code == 2, output
    assert len(_refused_line(output, names)) == 1, output
    _no_secret(run, run.printed())


def test_operator_commands_refused_exit_2_with_one_line(
    make_run: MakeRun, secure_stack: StackConfig
) -> None:
    names = _expected(secure_stack)
    sasl, es = names["kafka-sasl-password"][1][0], names["es-password"][1][0]
    run = make_run(KafkaAuth.SASL, SearchAuth.ES_BASIC)
    run.env_overrides |= {"DYNABRIDGE_KAFKA__SASL_PASSWORD": WRONG}
    status = run.run("status", "--table", run.table, "--json", timeout_s=DEADLINE_S)
    assert status.returncode == 2, status.stdout + status.stderr
    assert len(_refused_line(status.stderr, [sasl, "kafka.sasl_password"])) == 1
    run.env_overrides = {"DYNABRIDGE_SEARCH__PASSWORD": WRONG}
    verify = run.run("verify", "--table", run.table, "--quiet", timeout_s=DEADLINE_S)
    assert verify.returncode == 2, verify.stdout + verify.stderr
    assert len(_refused_line(verify.stderr, [es, "search.password"])) == 1
    _no_secret(run, run.printed())
