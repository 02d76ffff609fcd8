import pytest
from django.http import StreamingHttpResponse

from apps.devicelog.models import DeviceLogEntry
from apps.rfid.cards_csv import (
    HEADER,
    MAX_ERRORS,
    CardCsvError,
    CardImportResult,
    cards_csv_export,
    cards_csv_import,
)
from apps.rfid.models import Card
from tests.rfid.factories import AuthGroupFactory, CardFactory

pytestmark = pytest.mark.django_db


def export() -> str:
    return "".join(cards_csv_export())


def import_text(text: str, **kwargs) -> CardImportResult:
    kwargs.setdefault("user", None)
    return cards_csv_import(data=text.encode(), **kwargs)


def snapshot():
    """Everything an import could touch: cards, memberships, device log."""
    return (
        sorted(
            (c.pk, c.id_tag, c.authorized, c.vip, c.comment, tuple(g.pk for g in c.groups.all()))
            for c in Card.objects.prefetch_related("groups")
        ),
        DeviceLogEntry.objects.count(),
    )


def errors_of(text: str | bytes, **kwargs) -> list[str]:
    before = snapshot()
    data = text.encode() if isinstance(text, str) else text
    with pytest.raises(CardCsvError) as excinfo:
        cards_csv_import(data=data, user=None, **kwargs)
    assert snapshot() == before, "an invalid file changed something"
    return excinfo.value.errors


# --- export ------------------------------------------------------------------


def test_export_writes_the_appliance_format_sorted_by_id_tag():
    CardFactory(id_tag="04B", authorized=False, comment="Lost badge")
    CardFactory(id_tag="04A", vip=True, comment="Director")
    CardFactory(id_tag="04C", comment="")
    assert export() == (
        "id_tag;is_blocked;vip_level;comments;\n04A;0;1;Director;\n04B;1;0;Lost badge;\n04C;0;0;;\n"
    )


def test_export_of_no_card_is_the_header():
    assert export() == HEADER + "\n"


def test_export_is_a_stream_of_lines():
    CardFactory.create_batch(3)
    lines = list(cards_csv_export())
    assert len(lines) == 4
    assert all(line.endswith(";\n") for line in lines)
    response = StreamingHttpResponse(cards_csv_export(cards=Card.objects.none()))
    assert b"".join(response.streaming_content) == HEADER.encode() + b"\n"


def test_export_can_be_narrowed():
    CardFactory(id_tag="KEEP")
    CardFactory(id_tag="SKIP")
    assert export_lines(Card.objects.filter(id_tag="KEEP")) == [HEADER, "KEEP;0;0;;"]


def export_lines(cards):
    return "".join(cards_csv_export(cards=cards)).splitlines()


# --- round trip --------------------------------------------------------------


def test_round_trip_export_import_export_is_identical():
    CardFactory(id_tag="04A1B2C3", comment="Fleet car 12", vip=True)
    CardFactory(id_tag="DEADBEEF", authorized=False, comment="Lost; replaced by 04A1")
    CardFactory(id_tag="!~#-_.{}", comment='The "boss" card')
    CardFactory(id_tag="x" * 20, comment="é" * 50)
    CardFactory(id_tag="NOCOMMENT")
    first = export()

    assert import_text(first) == CardImportResult(created=0, updated=0, unchanged=5)
    Card.objects.all().delete()
    assert import_text(first) == CardImportResult(created=5, updated=0, unchanged=0)
    assert export() == first


def test_quotes_are_only_used_when_a_comment_needs_them():
    CardFactory(id_tag="A", comment="with ; inside")
    CardFactory(id_tag="B", comment='with " inside')
    CardFactory(id_tag="C", comment="plain, with a comma")
    assert export().splitlines()[1:] == [
        'A;0;0;"with ; inside";',
        'B;0;0;"with "" inside";',
        "C;0;0;plain, with a comma;",
    ]


# --- accepted variations -----------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"id_tag;is_blocked;vip_level;comments;\n04A1;1;1;Fleet;\n", id="plain"),
        pytest.param(
            b"\xef\xbb\xbfid_tag;is_blocked;vip_level;comments;\r\n04A1;1;1;Fleet;\r\n",
            id="bom-crlf",
        ),
        pytest.param(b"id_tag;is_blocked;vip_level;comments;\n04A1;1;1;Fleet;\n\n\n", id="blank"),
        pytest.param(b"id_tag;is_blocked;vip_level;comments\n04A1;1;1;Fleet", id="no-final-semi"),
        pytest.param(b"ID_TAG;IS_BLOCKED;VIP_LEVEL;COMMENTS;\n04A1;1;1;Fleet;\n", id="upper"),
        pytest.param(
            b"id_tag;is_blocked;vip_level;comments;\r\n04A1;1;1;Fleet;\r\n;;;;\r\n;;;;\r\n",
            id="spreadsheet",
        ),
        pytest.param(b"id_tag;is_blocked;vip_level;comments;\n 04A1 ; 1 ;1;Fleet;\n", id="spaces"),
    ],
)
def test_accepted_files(data):
    result = cards_csv_import(data=data, user=None)
    assert result == CardImportResult(created=1, updated=0, unchanged=0)
    card = Card.objects.get()
    assert (card.id_tag, card.authorized, card.vip, card.comment) == ("04A1", False, True, "Fleet")


def test_a_text_string_with_a_bom_is_accepted():
    cards_csv_import(data="\ufeff" + HEADER + "\n04A1;0;0;;\n", user=None)
    assert Card.objects.filter(id_tag="04A1").exists()


# --- semantics ---------------------------------------------------------------


def test_import_creates_updates_and_leaves_other_cards_alone(card_events, committed):
    staff = AuthGroupFactory()
    existing = CardFactory(id_tag="04A1B2C3", comment="old", groups=[staff])
    same = CardFactory(id_tag="SAME", comment="kept")
    other = CardFactory(id_tag="NOTINFILE", authorized=False, comment="untouched")
    text = f"{HEADER}\n04a1b2c3;1;1;new comment;\nSAME;0;0;kept;\nNEWCARD;0;0;;\n"
    with committed():
        result = import_text(text, source="cards.csv")

    assert result == CardImportResult(created=1, updated=1, unchanged=1)
    existing.refresh_from_db()
    # Matched whatever the case; the stored spelling stays.
    assert (existing.id_tag, existing.authorized, existing.vip, existing.comment) == (
        "04A1B2C3",
        False,
        True,
        "new comment",
    )
    other.refresh_from_db()
    assert (other.authorized, other.comment) == (False, "untouched")
    new = Card.objects.get(id_tag="NEWCARD")
    assert new.authorized and not new.vip
    [entry] = DeviceLogEntry.objects.filter(event="cards_imported")
    assert entry.message == (
        "Cards imported from cards.csv: 1 created, 1 updated, 1 unchanged (3 lines)."
    )
    assert card_events == [
        {
            "card_ids": frozenset({existing.pk, new.pk}),
            "id_tags": frozenset({"04A1B2C3", "NEWCARD"}),
            "group_ids": frozenset({staff.pk}),
        }
    ]
    assert same.pk not in card_events[0]["card_ids"]


def test_import_adds_every_card_of_the_file_to_the_group(card_events, committed):
    fleet = AuthGroupFactory(name="Fleet")
    already = CardFactory(id_tag="IN", groups=[fleet])
    outside = CardFactory(id_tag="OUT")
    elsewhere = CardFactory(id_tag="ELSEWHERE")
    with committed():
        import_text(f"{HEADER}\nIN;0;0;;\nOUT;0;0;;\nNEW;0;0;;\n", group=fleet)
    assert set(fleet.cards.values_list("id_tag", flat=True)) == {"IN", "OUT", "NEW"}
    assert not elsewhere.groups.exists()
    assert "All added to group Fleet." in DeviceLogEntry.objects.get().message
    # The card already in the group with the same values did not change.
    assert already.pk not in card_events[0]["card_ids"]
    assert outside.pk in card_events[0]["card_ids"]
    assert fleet.pk in card_events[0]["group_ids"]


def test_an_import_that_changes_nothing_is_logged_but_not_announced(card_events, committed):
    CardFactory(id_tag="A")
    with committed():
        import_text(f"{HEADER}\nA;0;0;;\n")
    assert DeviceLogEntry.objects.filter(event="cards_imported").count() == 1
    assert card_events == []


def test_dry_run_counts_without_changing_anything():
    CardFactory(id_tag="A", comment="x")
    before = snapshot()
    result = import_text(f"{HEADER}\nA;0;0;y;\nB;0;0;;\n", dry_run=True)
    assert result == CardImportResult(created=1, updated=1, unchanged=0)
    assert snapshot() == before


def test_a_header_only_file_imports_nothing():
    assert import_text(HEADER + "\n") == CardImportResult(created=0, updated=0, unchanged=0)


def test_import_works_across_query_chunks(monkeypatch):
    monkeypatch.setattr("apps.rfid.services.CHUNK_SIZE", 3)
    CardFactory(id_tag="T03", comment="old")
    lines = "".join(f"T{n:02d};0;0;c;\n" for n in range(10))
    assert import_text(HEADER + "\n" + lines, group=AuthGroupFactory()) == CardImportResult(
        created=9, updated=1, unchanged=0
    )
    assert Card.objects.filter(comment="c").count() == 10


# --- invalid files: line-numbered errors, nothing changed ----------------------


@pytest.fixture
def existing_cards():
    staff = AuthGroupFactory(name="Staff")
    CardFactory(id_tag="04A1B2C3", comment="Fleet car 12", groups=[staff])
    CardFactory(id_tag="KEEP", authorized=False)
    return staff


VALID = "04A1B2C3;1;1;changed;"


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (
            [VALID, "NEW1;0;0;;", "NEW2;2;0;;"],
            ["line 4: is_blocked must be 0 or 1, got '2'."],
        ),
        (
            [VALID, "NEW1;0;yes;;"],
            ["line 3: vip_level must be 0 or 1, got 'yes'."],
        ),
        (
            [VALID, "NEW1;0;0;;", "NEW2;0;0;;", "04a1b2c3;0;0;;"],
            ["line 5: duplicate id tag 04a1b2c3 (also on line 2)."],
        ),
        (
            [VALID, "NEW1;0;0;;", "NEW2;0;"],
            ["line 4: expected 4 fields separated by ';', got 2."],
        ),
        (
            [VALID, "NEW1,0,0,comment,"],
            [
                "line 3: expected 4 fields separated by ';', got 1. "
                "This line seems to use ',' instead."
            ],
        ),
        (
            [VALID, "NEW1;0;0;a;b;"],
            [
                "line 3: expected 4 fields separated by ';', got 5. "
                "A comment containing ';' must be enclosed in double quotes."
            ],
        ),
        (
            [VALID, "NEW1;0;0;" + "c" * 51 + ";"],
            ["line 3: comment longer than 50 characters (51)."],
        ),
        (
            [VALID, "NEW 1;0;0;;"],
            ["line 3: id tag 'NEW 1' may only contain printable ASCII characters, without spaces."],
        ),
        (
            [VALID, "CARTE-É;0;0;;"],
            [
                "line 3: id tag 'CARTE-É' may only contain printable ASCII characters, "
                "without spaces."
            ],
        ),
        (
            [VALID, "x" * 21 + ";0;0;;"],
            [f"line 3: id tag '{'x' * 21}' is longer than 20 characters."],
        ),
        ([VALID, ";0;0;no tag;"], ["line 3: the id tag is empty."]),
        (
            [VALID, 'NEW1;0;0;"Big" car;'],
            [
                "line 3: badly quoted field: a comment with quotes must be enclosed in "
                "double quotes, each quote inside doubled."
            ],
        ),
        ([VALID, "NEW1;0;0;bell\x07;"], ["line 3: the comment contains a control character."]),
    ],
)
def test_invalid_line_is_reported_and_nothing_changes(existing_cards, lines, expected):
    text = "\n".join([HEADER, *lines]) + "\n"
    assert errors_of(text) == expected
    assert errors_of(text.replace("\n", "\r\n"), group=existing_cards) == expected


def test_every_problem_is_reported_in_line_order(existing_cards):
    text = (
        f"{HEADER}\n"
        "GOOD;0;0;;\n"
        "\n"  # blank lines still count
        "BAD TAG;2;0;" + "c" * 60 + ";\n"
        "GOOD;0;0;;\n"
    )
    assert errors_of(text) == [
        "line 4: id tag 'BAD TAG' may only contain printable ASCII characters, without spaces.",
        "line 4: is_blocked must be 0 or 1, got '2'.",
        "line 4: comment longer than 50 characters (60).",
        "line 5: duplicate id tag GOOD (also on line 2).",
    ]


def test_a_file_in_another_separator_gets_one_clear_error(existing_cards):
    text = "id_tag,is_blocked,vip_level,comments,\n04A1,0,0,x,\n04A2,0,0,y,\n"
    assert errors_of(text) == ["line 1: fields must be separated by ';', this file uses ','."]
    tabbed = text.replace(",", "\t")
    assert errors_of(tabbed) == ["line 1: fields must be separated by ';', this file uses a tab."]


def test_a_wrong_header_is_reported_and_the_lines_still_checked(existing_cards):
    assert errors_of("tag;blocked;vip;comment;\nNEW;3;0;;\n") == [
        "line 1: expected the header 'id_tag;is_blocked;vip_level;comments;', "
        "got 'tag;blocked;vip;comment;'.",
        "line 2: is_blocked must be 0 or 1, got '3'.",
    ]


def test_a_missing_header_is_reported(existing_cards):
    assert errors_of("04A1B2C3;0;0;;\n") == [
        "line 1: expected the header 'id_tag;is_blocked;vip_level;comments;', got '04A1B2C3;0;0;;'."
    ]


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf", b"\n\r\n"])
def test_an_empty_file_is_refused(existing_cards, data):
    assert errors_of(data) == [
        "line 1: the file is empty: expected the header 'id_tag;is_blocked;vip_level;comments;'."
    ]


def test_a_file_that_is_not_utf8_is_refused(existing_cards):
    data = f"{HEADER}\nA;0;0;;\n".encode() + "B;0;0;Café;\n".encode("latin-1")
    assert errors_of(data) == ["line 3: the file is not UTF-8 text."]


def test_a_hopeless_file_stops_after_a_hundred_errors(existing_cards):
    text = HEADER + "\n" + "BAD TAG;0;0;;\n" * (MAX_ERRORS + 50)
    errors = errors_of(text)
    assert len(errors) == MAX_ERRORS + 1
    assert errors[-1] == f"Too many errors: only the first {MAX_ERRORS} are shown."
