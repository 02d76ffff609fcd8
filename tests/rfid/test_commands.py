import io

import pytest
from django.core.management import CommandError, call_command

from apps.devicelog.models import DeviceLogEntry
from apps.rfid.cards_csv import HEADER
from apps.rfid.models import Card
from tests.rfid.factories import AuthGroupFactory, CardFactory

pytestmark = pytest.mark.django_db


def run(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("cards", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def card_rows():
    return list(Card.objects.values_list("id_tag", "authorized", "vip", "comment"))


def test_export_to_standard_output():
    CardFactory(id_tag="04A1B2C3", vip=True, comment="Fleet car 12")
    out, _ = run("export")
    assert out == f"{HEADER}\n04A1B2C3;0;1;Fleet car 12;\n"


def test_export_to_a_file_then_import_it_back(tmp_path):
    CardFactory(id_tag="04A1B2C3", comment="semi; colon")
    CardFactory(id_tag="DEADBEEF", authorized=False)
    path = tmp_path / "cards.csv"
    _, err = run("export", str(path))
    assert f"Cards exported to {path}." in err
    before = path.read_bytes()

    Card.objects.all().delete()
    out, _ = run("import", str(path))
    assert out.strip() == f"Cards imported from {path}: 2 created, 0 updated, 0 unchanged."
    run("export", str(path))
    assert path.read_bytes() == before


def test_import_into_a_group(tmp_path):
    fleet = AuthGroupFactory(name="Fleet")
    path = tmp_path / "cards.csv"
    path.write_text(f"{HEADER}\r\nA;0;0;;\r\nB;1;0;;\r\n", encoding="utf-8-sig")
    run("import", str(path), "--group", "Fleet")
    assert sorted(fleet.cards.values_list("id_tag", flat=True)) == ["A", "B"]


def test_import_into_an_unknown_group_is_refused(tmp_path):
    path = tmp_path / "cards.csv"
    path.write_text(f"{HEADER}\nA;0;0;;\n")
    with pytest.raises(CommandError, match="No authentication group is named 'Nope'"):
        run("import", str(path), "--group", "Nope")
    assert not Card.objects.exists()


def test_an_invalid_file_prints_every_error_and_changes_nothing(tmp_path):
    CardFactory(id_tag="04A1B2C3", comment="before")
    path = tmp_path / "cards.csv"
    path.write_text(f"{HEADER}\n04A1B2C3;0;0;after;\nNEW;2;0;;\nNEW2;0;\n")
    before = card_rows()
    err = io.StringIO()
    with pytest.raises(CommandError, match=r"2 problems found; nothing was changed\."):
        call_command("cards", "import", str(path), stdout=io.StringIO(), stderr=err)
    assert err.getvalue().splitlines() == [
        f"{path}: line 3: is_blocked must be 0 or 1, got '2'.",
        f"{path}: line 4: expected 4 fields separated by ';', got 2.",
    ]
    assert card_rows() == before
    assert not DeviceLogEntry.objects.exists()


def test_check_only_reports_what_would_happen(tmp_path):
    CardFactory(id_tag="A")
    path = tmp_path / "cards.csv"
    path.write_text(f"{HEADER}\nA;1;0;;\nB;0;0;;\n")
    out, _ = run("import", str(path), "--check")
    assert out.strip() == f"{path} is valid: 1 created, 1 updated, 0 unchanged."
    assert card_rows() == [("A", True, False, "")]


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="Cannot read"):
        run("import", str(tmp_path / "absent.csv"))
