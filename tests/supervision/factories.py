import datetime as dt

import factory
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from factory.django import DjangoModelFactory

from apps.supervision.models import Supervision


class SupervisionFactory(DjangoModelFactory):
    """A CPO without authentication."""

    class Meta:
        model = Supervision

    name = factory.Sequence(lambda n: f"Operator {n}")
    url = factory.Sequence(lambda n: f"ws://cpo{n}.example/ocpp")


def ca_certificate_pem(common_name: str = "Test CPO CA") -> str:
    """A self-signed CA certificate, as a CPO would hand it out."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")
