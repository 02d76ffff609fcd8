"""The cards and groups pages: search, create/edit/delete, bulk actions, CSV, roles."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.devicelog.models import DeviceLogEntry
from apps.rfid.models import AuthGroup, Card, OfflineStrategy, OnlineMode
from tests.accounts.factories import AdminFactory, UserFactory
from tests.rfid.factories import AuthGroupFactory, CardFactory
from tests.stations.factories import StationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client, hot_state):
    client.force_login(UserFactory())
    return client


def _messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def _state() -> list[tuple]:
    return sorted(
        (c.id_tag, c.authorized, c.vip, c.comment, tuple(sorted(g.name for g in c.groups.all())))
        for c in Card.objects.prefetch_related("groups")
    )


def test_list_searches_id_tags_and_comments_and_paginates(operator):
    for i in range(60):
        CardFactory(id_tag=f"TAG{i:03d}", comment="fleet" if i % 2 else "visitor")
    response = operator.get("/cards/", {"q": "fleet"})
    assert response.status_code == 200
    page = response.context["page"]
    assert page.paginator.count == 30 and len(page) == 30
    assert operator.get("/cards/", {"q": "tag05"}).context["page"].paginator.count == 10
    second = operator.get("/cards/", {"page": 2})
    assert [c.id_tag for c in second.context["page"]][:2] == ["TAG050", "TAG051"]
    assert "page=1" in second.content.decode()
    assert operator.get("/cards/", {"page": "x"}).status_code == 200


def test_list_by_group_and_state(operator):
    group = AuthGroupFactory(name="Staff")
    CardFactory(id_tag="IN", groups=[group], authorized=False)
    CardFactory(id_tag="OUT")
    assert [c.id_tag for c in operator.get("/cards/", {"group": group.pk}).context["page"]] == [
        "IN"
    ]
    assert [c.id_tag for c in operator.get("/cards/", {"state": "blocked"}).context["page"]] == [
        "IN"
    ]
    assert operator.get("/cards/", {"group": "nope"}).status_code == 400


def test_a_new_card_is_blocked_until_someone_authorises_it(operator):
    group = AuthGroupFactory(name="Staff")
    response = operator.post(
        "/cards/new/",
        {"id_tag": "04A1B2", "vip": "on", "comment": "Van 3", "groups": [group.pk]},
        follow=True,
    )
    assert "Card 04A1B2 created. It is blocked until you authorise it." in _messages(response)
    card = Card.objects.get(id_tag="04A1B2")
    assert (card.authorized, card.vip, card.comment) == (False, True, "Van 3")
    assert list(card.groups.all()) == [group]
    assert DeviceLogEntry.objects.filter(event="card_created").count() == 1

    operator.post(
        f"/cards/{card.pk}/",
        {"id_tag": "04A1B2", "authorized": "on", "comment": "Van 3", "groups": []},
    )
    card.refresh_from_db()
    assert card.authorized and not card.vip and not card.groups.exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"id_tag": "has space"}, "1–20 printable characters, no spaces."),
        ({"id_tag": "existing"}, "A card with id tag existing already exists."),
        ({"id_tag": "x" * 21}, "Ensure this value has at most 20 characters"),
        ({"id_tag": "OK1", "comment": "c" * 51}, "Ensure this value has at most 50 characters"),
        ({"id_tag": "OK1", "groups": ["999"]}, "Select a valid choice"),
    ],
)
def test_bad_card_values_get_a_message_and_change_nothing(operator, data, message):
    CardFactory(id_tag="EXISTING")
    before = _state()
    response = operator.post("/cards/new/", data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert _state() == before


def test_delete_asks_then_deletes(operator):
    card = CardFactory(id_tag="GONE")
    assert "Delete this card?" in operator.get(f"/cards/{card.pk}/delete/").content.decode()
    operator.post(f"/cards/{card.pk}/delete/")
    assert not Card.objects.filter(pk=card.pk).exists()
    assert operator.get(f"/cards/{card.pk}/").status_code == 404


def test_bulk_authorise_block_and_move_to_group(operator):
    staff, visitors = AuthGroupFactory(name="Staff"), AuthGroupFactory(name="Visitors")
    a = CardFactory(id_tag="A", authorized=False, groups=[visitors])
    b = CardFactory(id_tag="B", authorized=False, groups=[visitors, staff])
    c = CardFactory(id_tag="C", authorized=False)

    response = operator.post(
        "/cards/bulk/", {"cards": [a.pk, b.pk], "action": "authorize"}, follow=True
    )
    assert "2 cards changed." in _messages(response)
    operator.post(
        "/cards/bulk/", {"cards": [a.pk, b.pk, c.pk], "action": "move", "group": staff.pk}
    )
    assert _state() == [
        ("A", True, False, "", ("Staff",)),
        ("B", True, False, "", ("Staff",)),
        ("C", False, False, "", ("Staff",)),
    ]
    operator.post("/cards/bulk/", {"cards": [a.pk], "action": "block"})
    a.refresh_from_db()
    assert not a.authorized


def test_bulk_delete_is_confirmed_first(operator):
    cards = [CardFactory() for _ in range(3)]
    ids = [card.pk for card in cards[:2]]
    response = operator.post("/cards/bulk/", {"cards": ids, "action": "delete"})
    assert "Delete these 2 cards?" in response.content.decode()
    assert Card.objects.count() == 3
    operator.post("/cards/bulk/", {"cards": ids, "action": "delete", "confirmed": "on"})
    assert list(Card.objects.all()) == [cards[2]]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"action": "authorize"}, "Select at least one card."),
        ({"cards": ["1"], "action": "move"}, "Choose the group."),
        ({"cards": ["abc"], "action": "block"}, "is not a valid value"),
        ({"cards": ["1"], "action": "explode"}, "Select a valid choice"),
    ],
)
def test_bulk_without_what_it_needs_says_so(operator, data, message):
    card = CardFactory(id_tag="KEEP", authorized=True)
    data = {k: ([str(card.pk)] if v == ["1"] else v) for k, v in data.items()}
    before = _state()
    response = operator.post("/cards/bulk/", data, follow=True)
    assert response.status_code == 200
    assert any(message in m for m in _messages(response)), _messages(response)
    assert _state() == before


def _upload(text: str, name: str = "cards.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="text/csv")


def test_csv_import_creates_and_updates_all_or_nothing(operator):
    staff = AuthGroupFactory(name="Staff")
    CardFactory(id_tag="KNOWN", authorized=True)
    good = "id_tag;is_blocked;vip_level;comments;\nKNOWN;1;0;now blocked;\nNEW1;0;1;Van;\n"
    response = operator.post(
        "/cards/import/", {"file": _upload(good), "group": staff.pk}, follow=True
    )
    assert "File imported: 1 cards created, 1 updated, 0 unchanged." in _messages(response)
    assert _state() == [
        ("KNOWN", False, False, "now blocked", ("Staff",)),
        ("NEW1", True, True, "Van", ("Staff",)),
    ]


def test_csv_import_with_errors_shows_them_by_line_and_changes_nothing(operator):
    CardFactory(id_tag="KNOWN")
    before = _state()
    bad = "id_tag;is_blocked;vip_level;comments;\nKNOWN;1;0;fine;\nbad tag;0;0;;\nOTHER;2;0;;\n"
    response = operator.post("/cards/import/", {"file": _upload(bad)})
    assert response.status_code == 400
    body = response.content.decode()
    assert "nothing was changed" in body
    assert "line 3: id tag &#x27;bad tag&#x27;" in body
    assert "line 4: is_blocked must be 0 or 1" in body
    assert _state() == before


@pytest.mark.parametrize(
    "content",
    [b"", b"\xff\xfe\x00garbage", b"id_tag,is_blocked,vip_level,comments\nA,0,0,\n"],
)
def test_unreadable_card_files_get_a_message(operator, content):
    before = _state()
    upload = SimpleUploadedFile("cards.csv", content, content_type="text/csv")
    response = operator.post("/cards/import/", {"file": upload})
    assert response.status_code == 400
    body = response.content.decode()
    assert 'class="error"' in body or 'class="field-error"' in body
    assert _state() == before


def test_csv_export_streams_the_card_file(operator):
    CardFactory(id_tag="B2", authorized=False, vip=True, comment="a;b")
    CardFactory(id_tag="A1")
    response = operator.get("/cards/export.csv")
    assert response["Content-Disposition"] == 'attachment; filename="cards.csv"'
    assert b"".join(response.streaming_content).decode() == (
        'id_tag;is_blocked;vip_level;comments;\nA1;0;0;;\nB2;1;1;"a;b";\n'
    )


def test_groups_list_their_modes_stations_and_cards(operator):
    group = AuthGroupFactory(
        name="Staff", online_mode=OnlineMode.ALL_CARDS, offline_strategy=OfflineStrategy.REJECT_ALL
    )
    StationFactory(identity="CP-2", auth_group=group)
    StationFactory(identity="CP-1", auth_group=group)
    CardFactory(groups=[group])
    body = operator.get("/groups/").content.decode()
    assert "Authorize all cards" in body and "Reject all" in body
    assert "CP-1, CP-2" in body
    assert f'href="/cards/?group={group.pk}">1</a>' in body


def test_group_create_edit_and_delete_through_the_services(operator):
    operator.post(
        "/groups/new/",
        {"name": "Night", "online_mode": "known_cards", "offline_strategy": "use_cache"},
    )
    group = AuthGroup.objects.get(name="Night")
    operator.post(
        f"/groups/{group.pk}/",
        {"name": "Night shift", "online_mode": "reader_disabled", "offline_strategy": "use_cache"},
    )
    group.refresh_from_db()
    assert (group.name, group.online_mode) == ("Night shift", "reader_disabled")
    assert DeviceLogEntry.objects.filter(event="auth_group_updated").exists()

    StationFactory(auth_group=group)
    response = operator.post(f"/groups/{group.pk}/delete/", follow=True)
    assert any("move it to another group first" in m for m in _messages(response))
    assert AuthGroup.objects.filter(pk=group.pk).exists()


def test_bad_group_values_get_a_message(operator):
    AuthGroupFactory(name="Taken")
    response = operator.post(
        "/groups/new/",
        {"name": "Taken", "online_mode": "sometimes", "offline_strategy": "use_cache"},
    )
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    response = operator.post(
        "/groups/new/",
        {"name": "Taken", "online_mode": "known_cards", "offline_strategy": "use_cache"},
    )
    assert "already exists" in response.content.decode()
    assert AuthGroup.objects.count() == 1


@pytest.mark.parametrize("url", ["/cards/", "/groups/", "/cards/new/", "/cards/export.csv"])
def test_operators_and_admins_may_ebms_may_not(client, hot_state, url):
    for user, status in (
        (UserFactory(), 200),
        (AdminFactory(), 200),
        (UserFactory(role="ebms"), 403),
    ):
        client.force_login(user)
        assert client.get(url).status_code == status, (user.role, url)
    client.logout()
    assert client.get(url).status_code == 302


def test_edit_pages_show_the_current_values(operator):
    group = AuthGroupFactory(name="Staff", plug_and_charge_id_tag="FREE")
    StationFactory(identity="CP-9", auth_group=group)
    card = CardFactory(id_tag="SHOWN", comment="Blue van", groups=[group])
    body = operator.get(f"/cards/{card.pk}/").content.decode()
    assert 'value="SHOWN"' in body and 'value="Blue van"' in body
    assert f'value="{group.pk}" id="id_groups_0" checked' in body
    body = operator.get(f"/groups/{group.pk}/").content.decode()
    assert 'value="FREE"' in body and "CP-9" in body
    assert f'href="/cards/?group={group.pk}">1 card</a>' in body
    assert operator.get("/groups/999/").status_code == 404
