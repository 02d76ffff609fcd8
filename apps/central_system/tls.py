"""The TLS endpoint for stations on security profile 2 (``wss://``).

Enabled with ``EVCE_OCPP_TLS=1`` on ``EVCE_OCPP_TLS_PORT`` [9981]. The
server certificate is ``EVCE_OCPP_TLS_CERT`` / ``EVCE_OCPP_TLS_KEY`` when
given, else one generated at first start into ``<data dir>/tls/`` and kept:
a self-signed certificate for this host's names and addresses, which
installers load into the stations (or replace with a CA-signed one).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.conf import settings

CERT_NAME = "ocpp-server.crt"
KEY_NAME = "ocpp-server.key"
VALIDITY_DAYS = 10 * 365


def certificate_paths() -> tuple[Path, Path]:
    if settings.OCPP_TLS_CERT and settings.OCPP_TLS_KEY:
        return Path(settings.OCPP_TLS_CERT), Path(settings.OCPP_TLS_KEY)
    folder = Path(settings.DATA_DIR) / "tls"
    return folder / CERT_NAME, folder / KEY_NAME


def ensure_server_certificate() -> tuple[Path, Path]:
    """The certificate and key files, generated once when the install has none."""
    cert_path, key_path = certificate_paths()
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    hostname = socket.gethostname()
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    if hostname and hostname != "localhost":
        names.append(x509.DNSName(hostname))
    for address in {"127.0.0.1", "::1", _lan_address()}:
        if address:
            names.append(x509.IPAddress(ipaddress.ip_address(address)))
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, hostname or "evce"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "evce"),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALIDITY_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        # Its own root: stations load it as the central system's root certificate.
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def _lan_address() -> str:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect(("192.0.2.1", 9))  # TEST-NET: connect() on UDP sends nothing
            return sock.getsockname()[0]
    except OSError:
        return ""


def _escape(value: str) -> str:
    # Twisted endpoint strings separate fields with ':' and escape with '\'.
    return value.replace("\\", "\\\\").replace(":", "\\:")


def tls_endpoint(bind: str) -> str:
    """The daphne (Twisted) endpoint of the TLS port, creating the certificate if needed."""
    cert_path, key_path = ensure_server_certificate()
    return (
        f"ssl:port={settings.OCPP_TLS_PORT}:interface={_escape(bind)}"
        f":privateKey={_escape(str(key_path))}:certKey={_escape(str(cert_path))}"
    )
