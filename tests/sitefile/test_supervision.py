"""Remote supervision in the site file (SPEC §6 shape): import, export, errors."""

from __future__ import annotations

import pytest
import yaml
from django.core.management import call_command

from apps.siteconfig.models import SiteSettings
from apps.sitefile.sitefile import site_export, site_import
from apps.stations.models import Station
from apps.supervision.models import GroupSupervision, StationCpoPassword, Supervision
from apps.supervision.secrets import secret_decrypt
from tests.sitefile.test_sitefile import DEMO, import_errors, snapshot, wipe_configuration
from tests.supervision.factories import ca_certificate_pem

pytestmark = pytest.mark.django_db

SHARED_PASSWORD = "operator-a-shared-1"
STATION_PASSWORD_HEX = "00A1B2C3D4E5F60708"


def supervised_site(ca_pem: str) -> dict:
    """The demo site relayed in ``multiple`` mode: Staff to A, Visitors to B, Fleet local."""
    doc = yaml.safe_load(DEMO)
    doc["site"]["supervision"] = "multiple"
    doc["supervisions"] = [
        {
            "name": "Operator A",
            "url": "wss://ocpp.operator-a.example/ocpp",
            "ping_interval_s": 20,
            "message_timeout_s": 15,
            "forward_security_events": True,
            "auth": "shared",
            "password": SHARED_PASSWORD,
            "ca_certificate": ca_pem,
            "max_attempts": 800,
        },
        {"name": "Operator B", "url": "ws://cpo-b.example/", "auth": "per_station"},
    ]
    groups = {g["name"]: g for g in doc["auth_groups"]}
    groups["Staff"]["supervision"] = "Operator A"
    groups["Visitors"]["supervision"] = "Operator B"
    visitor_station = next(s for s in doc["stations"] if s["group"] == "Visitors")
    visitor_station["cpo_password_hex"] = STATION_PASSWORD_HEX
    return doc


def test_supervisions_import_with_their_groups_and_passwords():
    ca_pem = ca_certificate_pem()
    doc = supervised_site(ca_pem)
    result = site_import(yaml.safe_dump(doc, sort_keys=False))

    assert result.created["supervisions"] == 2
    assert SiteSettings.load().supervision_mode == "multiple"
    a = Supervision.objects.get(name="Operator A")
    assert (a.ping_interval_s, a.message_timeout_s, a.max_attempts) == (20, 15, 800)
    assert a.forward_security_events and a.ca_certificate == ca_pem
    assert secret_decrypt(a.password_encrypted) == SHARED_PASSWORD.encode()
    assert dict(GroupSupervision.objects.values_list("group__name", "supervision__name")) == {
        "Staff": "Operator A",
        "Visitors": "Operator B",
    }
    visitor = next(s for s in doc["stations"] if s["group"] == "Visitors")["identity"]
    stored = StationCpoPassword.objects.get(station__identity=visitor)
    assert secret_decrypt(stored.password_encrypted) == bytes.fromhex(STATION_PASSWORD_HEX)


def test_the_export_reimports_identically_and_never_carries_a_password():
    site_import(yaml.safe_dump(supervised_site(ca_certificate_pem()), sort_keys=False))
    first = site_export()

    assert SHARED_PASSWORD not in first and STATION_PASSWORD_HEX not in first
    assert "password" not in first and "password_encrypted" not in first
    doc = yaml.safe_load(first)
    assert [s["name"] for s in doc["supervisions"]] == ["Operator A", "Operator B"]
    assert {g["name"]: g.get("supervision") for g in doc["auth_groups"]} == {
        "Fleet": None,
        "Staff": "Operator A",
        "Visitors": "Operator B",
    }

    # Over the same install the stored passwords stay; the file is stable.
    site_import(first)
    assert site_export() == first
    assert (
        secret_decrypt(Supervision.objects.get(name="Operator A").password_encrypted)
        == SHARED_PASSWORD.encode()
    )


def test_on_a_fresh_install_the_export_needs_its_shared_password_again():
    site_import(yaml.safe_dump(supervised_site(ca_certificate_pem()), sort_keys=False))
    exported = site_export()
    GroupSupervision.objects.all().delete()
    Supervision.objects.all().delete()
    wipe_configuration()

    errors = import_errors(exported)
    assert errors == [
        "supervisions[0].password: is required with auth: shared (passwords are never exported)"
    ]
    doc = yaml.safe_load(exported)
    doc["supervisions"][0]["password"] = SHARED_PASSWORD
    site_import(yaml.safe_dump(doc, sort_keys=False))
    assert site_export() == exported


def test_a_group_left_without_supervision_becomes_local():
    doc = supervised_site(ca_certificate_pem())
    site_import(yaml.safe_dump(doc, sort_keys=False))
    next(g for g in doc["auth_groups"] if g["name"] == "Visitors").pop("supervision")
    result = site_import(yaml.safe_dump(doc, sort_keys=False))
    assert result.updated.get("group_supervisions") == 1
    assert list(GroupSupervision.objects.values_list("group__name", flat=True)) == ["Staff"]


BAD_SUPERVISIONS = """
site: {supervision: unique}
supervisions:
  - {name: A, url: "http://cpo.example", ping_interval_s: 0, message_timeout_s: 61}
  - {name: A, url: "wss://cpo.example", auth: shared, password_hex: "0G"}
  - name: C
    url: "ws://cpo.example"
    auth: none
    password: "x"
    ca_certificate: "-----BEGIN CERTIFICATE-----\\nnope\\n-----END CERTIFICATE-----"
  - {name: D, url: "ws://cpo.example", auth: sometimes, colour: red}
  - {name: E, url: "ws://cpo.example", ca_certificate: missing.pem}
auth_groups:
  - {name: Staff, supervision: Nobody}
stations:
  - identity: CP1
    name: Bay 1
    zone: Nowhere
    cpo_password: "tab\\tinside"
    connectors: [{id: 1, max_current_a: 16}]
"""


def test_every_problem_is_reported_with_its_path_and_nothing_changes():
    before = snapshot()
    errors = import_errors(BAD_SUPERVISIONS)
    assert snapshot() == before
    expected = [
        "supervisions[0].url: must be a ws:// or wss:// URL with a host",
        "supervisions[0].ping_interval_s: must be between 1 and 60",
        "supervisions[0].message_timeout_s: must be between 1 and 60",
        "supervisions[1].password_hex: An even number of hex digits (0-9, A-F), at most 128.",
        "supervisions[1].name: supervision 'A' is defined twice",
        "supervisions[2].ca_certificate: Not a PEM certificate "
        "(expected -----BEGIN CERTIFICATE----- …).",
        "supervisions[2].password: is used with auth: shared only",
        "supervisions[3].colour: unknown key (expected one of name, url, ping_interval_s, "
        "message_timeout_s, forward_security_events, auth, password, password_hex, "
        "ca_certificate, max_attempts)",
        "supervisions[3].auth: 'sometimes' is not one of none, shared, per_station",
        "supervisions[4].ca_certificate: give the certificate inline (PEM): "
        "no folder to read it from",
        "auth_groups[0].supervision: unknown supervision 'Nobody'",
        "stations[0].zone: unknown zone 'Nowhere'",
        "stations[0].cpo_password: 1–64 printable ASCII characters (use hex for other bytes).",
        "site.supervision: 'unique' relays every station to one supervision; the site would have 4",
    ]
    assert sorted(errors) == sorted(expected)


def test_unique_mode_with_its_one_supervision_imports():
    text = """
site: {supervision: unique}
supervisions:
  - {name: The CPO, url: "wss://cpo.example/ocpp/"}
"""
    site_import(text)
    assert Supervision.objects.get().name == "The CPO"
    assert SiteSettings.load().supervision_mode == "unique"


def test_the_command_reads_the_ca_certificate_beside_the_site_file(tmp_path):
    ca_pem = ca_certificate_pem()
    (tmp_path / "operator-a-ca.pem").write_text(ca_pem)
    doc = supervised_site(ca_pem)
    doc["supervisions"][0]["ca_certificate"] = "operator-a-ca.pem"
    site = tmp_path / "site.yaml"
    site.write_text(yaml.safe_dump(doc, sort_keys=False))

    call_command("site", "import", str(site))

    assert Supervision.objects.get(name="Operator A").ca_certificate == ca_pem
    assert Station.objects.exists()


def test_a_file_may_leave_unique_for_multiple_and_add_a_supervision():
    site_import('site: {supervision: unique}\nsupervisions: [{name: A, url: "ws://a.example"}]\n')
    site_import(
        "site: {supervision: multiple}\n"
        'supervisions: [{name: A, url: "ws://a.example"}, {name: B, url: "ws://b.example"}]\n'
    )
    assert SiteSettings.load().supervision_mode == "multiple"
    assert Supervision.objects.count() == 2
