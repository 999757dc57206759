"""The secure profile's test CA and certificates, made once and kept (like Kafka's cluster id).

Made with trustme: an RSA CA, a server certificate for ``127.0.0.1`` and ``localhost`` (the
Kafka broker, Elasticsearch and OpenSearch all present it; also their transport/inter-broker
client certificate), a client certificate for mTLS, an OpenSearch admin certificate, and an
unrelated CA with a client certificate of its own, for the "untrusted certificate" tests.
Keys are unencrypted PKCS#8 PEM (the only form all three servers read). Nothing here is a
secret worth protecting: it is a local test CA.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization

ORG, UNIT = "dynabridge", "dev"


@dataclass(frozen=True, slots=True)
class Tls:
    """Paths of the PEM files in ``directory``."""

    directory: Path

    @property
    def ca(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def server_cert(self) -> Path:
        return self.directory / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.directory / "server.key"

    @property
    def client_cert(self) -> Path:
        return self.directory / "client.pem"

    @property
    def client_key(self) -> Path:
        return self.directory / "client.key"

    @property
    def admin_cert(self) -> Path:
        return self.directory / "admin.pem"

    @property
    def admin_key(self) -> Path:
        return self.directory / "admin.key"

    @property
    def other_ca(self) -> Path:
        """A CA that signed none of the servers' certificates."""
        return self.directory / "other-ca.pem"

    @property
    def rogue_client_cert(self) -> Path:
        """A client certificate the servers do not trust (signed by ``other_ca``)."""
        return self.directory / "rogue-client.pem"

    @property
    def rogue_client_key(self) -> Path:
        return self.directory / "rogue-client.key"

    @property
    def complete(self) -> bool:
        return all(p.is_file() for p in (self.ca, self.rogue_client_key, self.admin_key))


def ensure(directory: Path) -> Tls:
    """The CA and certificates in ``directory``, made if any is missing (then all are remade)."""
    tls = Tls(directory)
    if tls.complete:
        return tls
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)
    ca = trustme.CA(organization_name=ORG, organization_unit_name=UNIT, key_type=_RSA)
    _write(tls.ca, ca.cert_pem.bytes())
    _leaf(ca, tls.server_cert, tls.server_key, "dynabridge-server", "127.0.0.1", "localhost")
    _leaf(ca, tls.client_cert, tls.client_key, "dynabridge-client")
    _leaf(ca, tls.admin_cert, tls.admin_key, "dynabridge-admin")
    other = trustme.CA(organization_name="elsewhere", key_type=_RSA)
    _write(tls.other_ca, other.cert_pem.bytes())
    _leaf(other, tls.rogue_client_cert, tls.rogue_client_key, "dynabridge-client")
    return tls


def distinguished_name(cert_path: Path) -> str:
    """The certificate's subject as RFC 2253 text, most specific first (Java's format)."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return cert.subject.rfc4514_string()


_RSA = trustme.KeyType.RSA


def _leaf(ca: trustme.CA, cert: Path, key: Path, name: str, *identities: str) -> None:
    leaf = ca.issue_cert(
        *(identities or (f"{name}.invalid",)),
        common_name=name,
        organization_name=ORG,
        organization_unit_name=UNIT,
        key_type=_RSA,
    )
    _write(cert, b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    private = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), password=None)
    pkcs8 = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write(key, pkcs8)


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    # Read by the search engines' service user; a local test CA's keys guard nothing real.
    path.chmod(0o644)
