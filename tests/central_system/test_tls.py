"""The certificate of the TLS endpoint (security profile 2)."""

from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from apps.central_system import tls


def test_certificate_is_generated_once_and_names_this_host(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    settings.OCPP_TLS_CERT = settings.OCPP_TLS_KEY = ""
    settings.OCPP_TLS_PORT = 9981
    cert_path, key_path = tls.ensure_server_certificate()
    assert cert_path.parent == tmp_path / "tls"
    assert key_path.stat().st_mode & 0o777 == 0o600
    first = cert_path.read_bytes()
    assert tls.ensure_server_certificate() == (cert_path, key_path)
    assert cert_path.read_bytes() == first  # kept, not regenerated
    certificate = x509.load_pem_x509_certificate(first)
    names = certificate.extensions.get_extension_for_oid(
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME
    ).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    endpoint = tls.tls_endpoint("0.0.0.0")
    assert endpoint.startswith("ssl:port=9981:interface=0.0.0.0:privateKey=")
    assert str(cert_path) in endpoint


def test_an_installer_certificate_is_used_as_given(settings, tmp_path):
    settings.OCPP_TLS_CERT = str(tmp_path / "site.crt")
    settings.OCPP_TLS_KEY = str(tmp_path / "site.key")
    assert tls.certificate_paths() == (tmp_path / "site.crt", tmp_path / "site.key")


def test_endpoint_strings_escape_colons():
    assert tls._escape("C:\\certs\\a.pem") == "C\\:\\\\certs\\\\a.pem"
