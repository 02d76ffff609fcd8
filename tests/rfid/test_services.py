import pytest
from django.core.exceptions import ValidationError

from apps.devicelog.models import DeviceLogEntry, EventCategory
from apps.rfid.models import AuthGroup, Card, OnlineMode
from apps.rfid.services import (
    auth_group_create,
    auth_group_delete,
    auth_group_update,
    card_create,
    card_delete,
    card_update,
    cards_bulk_delete,
    cards_bulk_update,
)
from apps.rfid.signals import cards_changed
from apps.stations.models import Station
from apps.stations.services import station_groups_setup
from tests.accounts.factories import UserFactory
from tests.rfid.factories import AuthGroupFactory, CardFactory
from tests.stations.factories import DiscoveredStationFactory, StationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator():
    return UserFactory(username="maria")


def log_entries(event=None):
    entries = DeviceLogEntry.objects.order_by("id")
    return list(entries.filter(event=event) if event else entries)


def card_state():
    return sorted(
        (c.id_tag, c.authorized, c.vip, c.comment, tuple(sorted(g.name for g in c.groups.all())))
        for c in Card.objects.prefetch_related("groups")
    )


# --- cards -------------------------------------------------------------------


def test_card_create_saves_logs_and_announces(operator, committed, card_events):
    staff, fleet = AuthGroupFactory(name="Staff"), AuthGroupFactory(name="Fleet")
    with committed():
        card = card_create(
            id_tag="04A1B2C3",
            vip=True,
            comment="Fleet car 12",
            groups=[staff, fleet],
            user=operator,
        )

    assert (card.id_tag, card.authorized, card.vip, card.comment) == (
        "04A1B2C3",
        True,
        True,
        "Fleet car 12",
    )
    assert set(card.groups.all()) == {staff, fleet}
    [entry] = log_entries()
    assert (entry.category, entry.event, entry.username) == (
        EventCategory.CONFIGURATION,
        "card_created",
        "maria",
    )
    assert entry.message == "RFID card 04A1B2C3 created."
    assert entry.data["groups"] == ["Fleet", "Staff"]
    assert card_events == [
        {
            "card_ids": frozenset({card.pk}),
            "id_tags": frozenset({"04A1B2C3"}),
            "group_ids": frozenset({staff.pk, fleet.pk}),
        }
    ]


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"id_tag": "04A1 B2C3"}, "id_tag"),
        ({"id_tag": "x" * 21}, "id_tag"),
        ({"id_tag": "04a1b2c3"}, "id_tag"),  # exists as 04A1B2C3
        ({"id_tag": "NEW", "comment": "c" * 51}, "comment"),
    ],
)
def test_card_create_refuses_bad_values_and_changes_nothing(
    values, field, operator, committed, card_events
):
    CardFactory(id_tag="04A1B2C3")
    before = card_state()
    with committed(), pytest.raises(ValidationError) as excinfo:
        card_create(user=operator, **values)
    assert field in excinfo.value.message_dict
    assert card_state() == before
    assert log_entries() == []
    assert card_events == []


def test_card_update_changes_only_what_is_asked(operator, committed, card_events):
    staff, fleet = AuthGroupFactory(name="Staff"), AuthGroupFactory(name="Fleet")
    card = CardFactory(id_tag="04A1B2C3", comment="old", groups=[staff])
    with committed():
        card_update(card=card, authorized=False, comment="Lost", groups=[fleet], user=operator)

    card.refresh_from_db()
    assert (card.authorized, card.vip, card.comment) == (False, False, "Lost")
    assert list(card.groups.all()) == [fleet]
    [entry] = log_entries("card_updated")
    assert entry.message == "RFID card 04A1B2C3 changed: authorised, comment, groups."
    assert entry.data["changes"] == {
        "authorized": [True, False],
        "comment": ["old", "Lost"],
        "groups": [["Staff"], ["Fleet"]],
    }
    # Both groups' stations must hear about it: it left one and joined the other.
    assert card_events == [
        {
            "card_ids": frozenset({card.pk}),
            "id_tags": frozenset({"04A1B2C3"}),
            "group_ids": frozenset({staff.pk, fleet.pk}),
        }
    ]


def test_renaming_a_card_announces_the_old_and_new_tags(operator, committed, card_events):
    card = CardFactory(id_tag="04A1B2C3")
    with committed():
        updated = card_update(card=card, id_tag="04A1B2C4", user=operator)
    assert updated.id_tag == "04A1B2C4"
    assert card_events[0]["id_tags"] == {"04A1B2C3", "04A1B2C4"}


def test_card_update_without_a_change_writes_nothing(operator, committed, card_events):
    staff = AuthGroupFactory()
    card = CardFactory(comment="same", groups=[staff])
    with committed():
        card_update(card=card, comment="same", authorized=True, groups=[staff], user=operator)
    assert log_entries() == []
    assert card_events == []


def test_card_update_refuses_a_clash_and_keeps_the_card(operator, committed, card_events):
    CardFactory(id_tag="04A1B2C3")
    card = CardFactory(id_tag="OTHER", comment="kept")
    with committed(), pytest.raises(ValidationError) as excinfo:
        card_update(card=card, id_tag="04a1b2c3", comment="changed", user=operator)
    assert excinfo.value.message_dict == {"id_tag": ["A card with id tag 04a1b2c3 already exists."]}
    card.refresh_from_db()
    assert (card.id_tag, card.comment) == ("OTHER", "kept")
    assert card_events == []


def test_card_delete_tells_the_groups_stations_which_tag_to_forget(
    operator, committed, card_events
):
    staff = AuthGroupFactory()
    card = CardFactory(id_tag="04A1B2C3", groups=[staff])
    pk = card.pk
    with committed():
        card_delete(card=card, user=operator)
    assert not Card.objects.exists()
    assert staff.pk and AuthGroup.objects.filter(pk=staff.pk).exists()
    assert log_entries()[0].message == "RFID card 04A1B2C3 deleted."
    assert card_events == [
        {
            "card_ids": frozenset({pk}),
            "id_tags": frozenset({"04A1B2C3"}),
            "group_ids": frozenset({staff.pk}),
        }
    ]


def test_cards_bulk_delete_logs_once(operator, committed, card_events):
    CardFactory.create_batch(3)
    keep = CardFactory(comment="keep")
    with committed():
        deleted = cards_bulk_delete(cards=Card.objects.exclude(pk=keep.pk), user=operator)
    assert deleted == 3
    assert list(Card.objects.all()) == [keep]
    [entry] = log_entries()
    assert entry.message == "3 RFID cards deleted."
    assert len(card_events) == 1
    assert len(card_events[0]["id_tags"]) == 3


# --- bulk edit ---------------------------------------------------------------


def test_bulk_block_counts_and_announces_only_the_cards_that_change(
    operator, committed, card_events
):
    staff = AuthGroupFactory()
    active = CardFactory.create_batch(2, groups=[staff])
    blocked = CardFactory(authorized=False)
    untouched = CardFactory()
    with committed():
        count = cards_bulk_update(
            cards=Card.objects.exclude(pk=untouched.pk), authorized=False, user=operator
        )

    assert count == 2
    assert not Card.objects.filter(authorized=True).exclude(pk=untouched.pk).exists()
    [entry] = log_entries()
    assert entry.event == "cards_bulk_updated"
    assert entry.message == "2 RFID cards changed: blocked."
    assert entry.username == "maria"
    assert entry.data["id_tags"] == sorted(c.id_tag for c in active)
    assert card_events == [
        {
            "card_ids": frozenset(c.pk for c in active),
            "id_tags": frozenset(c.id_tag for c in active),
            "group_ids": frozenset({staff.pk}),
        }
    ]
    assert blocked.pk not in card_events[0]["card_ids"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"authorized": True}, (True, False)),
        ({"vip": True}, (False, True)),
        ({"authorized": True, "vip": True}, (True, True)),
    ],
)
def test_bulk_authorise_and_vip(change, expected, operator):
    cards = CardFactory.create_batch(3, authorized=False, vip=False)
    assert cards_bulk_update(cards=cards, user=operator, **change) == 3
    assert {(c.authorized, c.vip) for c in Card.objects.all()} == {expected}


def test_bulk_vip_off_message(operator):
    CardFactory(vip=True)
    cards_bulk_update(cards=Card.objects.all(), vip=False, user=operator)
    assert log_entries()[0].message == "1 RFID card changed: VIP off."


def test_bulk_move_between_groups(operator, committed, card_events):
    staff, fleet = AuthGroupFactory(name="Staff"), AuthGroupFactory(name="Fleet")
    in_staff = CardFactory.create_batch(2, groups=[staff])
    already_in_fleet = CardFactory(groups=[fleet])
    with committed():
        count = cards_bulk_update(
            cards=[*in_staff, already_in_fleet],
            add_groups=[fleet],
            remove_groups=[staff],
            user=operator,
        )
    assert count == 2
    assert not staff.cards.exists()
    assert set(fleet.cards.all()) == {*in_staff, already_in_fleet}
    assert log_entries()[0].message == "2 RFID cards changed: added to Fleet; removed from Staff."
    assert card_events == [
        {
            "card_ids": frozenset(c.pk for c in in_staff),
            "id_tags": frozenset(c.id_tag for c in in_staff),
            "group_ids": frozenset({staff.pk, fleet.pk}),
        }
    ]


def test_bulk_refuses_adding_and_removing_the_same_group(operator):
    staff = AuthGroupFactory(name="Staff")
    card = CardFactory()
    with pytest.raises(ValidationError, match="both added and removed: Staff"):
        cards_bulk_update(cards=[card], add_groups=[staff], remove_groups=[staff], user=operator)
    assert not staff.cards.exists()
    assert log_entries() == []


def test_bulk_without_change_writes_nothing(operator, committed, card_events):
    cards = CardFactory.create_batch(2)
    with committed():
        assert cards_bulk_update(cards=cards, authorized=True, user=operator) == 0
        assert cards_bulk_update(cards=Card.objects.none(), vip=True, user=operator) == 0
    assert log_entries() == []
    assert card_events == []


def test_bulk_handles_more_cards_than_one_query_takes(operator, monkeypatch):
    monkeypatch.setattr("apps.rfid.services.CHUNK_SIZE", 2)
    group = AuthGroupFactory()
    CardFactory.create_batch(5)
    assert cards_bulk_update(cards=Card.objects.all(), add_groups=[group], user=operator) == 5
    assert group.cards.count() == 5


def test_a_failing_receiver_does_not_undo_the_change(operator, committed):
    def broken(sender, **kwargs):
        raise RuntimeError("sync unavailable")

    cards_changed.connect(broken, dispatch_uid="broken", weak=False)
    try:
        with committed():
            card_create(id_tag="04A1B2C3", user=operator)
    finally:
        cards_changed.disconnect(dispatch_uid="broken")
    assert Card.objects.filter(id_tag="04A1B2C3").exists()


# --- groups ------------------------------------------------------------------


def test_auth_group_create_update_and_announce(operator, committed, group_events):
    with committed():
        group = auth_group_create(name="Staff", user=operator)
    station = StationFactory(auth_group=group)
    with committed():
        auth_group_update(group=group, online_mode=OnlineMode.ALL_CARDS, user=operator)

    assert group.online_mode == OnlineMode.ALL_CARDS
    assert [e.event for e in log_entries()] == ["auth_group_created", "auth_group_updated"]
    assert log_entries()[1].message == "Authentication group Staff changed: online mode."
    assert group_events == [
        {"group_ids": frozenset({group.pk}), "station_ids": frozenset()},
        {"group_ids": frozenset({group.pk}), "station_ids": frozenset({station.pk})},
    ]


def test_auth_group_update_refuses_bad_values(operator):
    group = AuthGroupFactory(name="Staff")
    with pytest.raises(ValidationError):
        auth_group_update(group=group, offline_strategy="maybe", user=operator)
    group.refresh_from_db()
    assert group.offline_strategy == "use_cache"
    assert log_entries() == []


def test_a_group_used_by_stations_cannot_be_deleted(operator, committed, group_events):
    group = AuthGroupFactory(name="Staff")
    StationFactory(identity="CP001", auth_group=group)
    StationFactory(identity="CP002", auth_group=group)
    with committed(), pytest.raises(ValidationError) as excinfo:
        auth_group_delete(group=group, user=operator)
    assert excinfo.value.messages == [
        "Group Staff is used by 2 stations (CP001, CP002): move them to another group first."
    ]
    assert AuthGroup.objects.filter(pk=group.pk).exists()
    assert log_entries() == []
    assert group_events == []


def test_deleting_an_unused_group_keeps_its_cards(operator, committed, group_events):
    group = AuthGroupFactory(name="Visitors")
    card = CardFactory(groups=[group])
    pk = group.pk
    with committed():
        auth_group_delete(group=group, user=operator)
    assert not AuthGroup.objects.exists()
    assert Card.objects.get(pk=card.pk).groups.count() == 0
    assert log_entries()[0].message == "Authentication group Visitors deleted."
    assert group_events == [{"group_ids": frozenset({pk}), "station_ids": frozenset()}]


# --- first installation ------------------------------------------------------


def groups_of_stations():
    return {
        s.identity: s.auth_group.name if s.auth_group else None
        for s in Station.objects.select_related("auth_group")
    }


def test_one_global_group_holds_every_installed_station(operator, committed, group_events):
    old = AuthGroupFactory(name="Old")
    a = StationFactory(identity="CP001", auth_group=old)
    b = StationFactory(identity="CP002")
    DiscoveredStationFactory(identity="NEW01")
    with committed():
        groups = station_groups_setup(mode="global", user=operator)

    assert [g.name for g in groups] == ["All stations"]
    assert groups_of_stations() == {
        "CP001": "All stations",
        "CP002": "All stations",
        "NEW01": None,  # not installed yet
    }
    assert AuthGroup.objects.filter(pk=old.pk).exists()
    [entry] = log_entries()
    assert entry.message == "Authentication groups set up: one global group All stations."
    assert group_events == [
        {
            "group_ids": frozenset({groups[0].pk, old.pk}),
            "station_ids": frozenset({a.pk, b.pk}),
        }
    ]


def test_global_setup_is_idempotent(operator, committed, group_events):
    StationFactory.create_batch(2)
    first = station_groups_setup(mode="global", global_group_name="Site", user=operator)
    with committed():
        second = station_groups_setup(mode="global", global_group_name="Site", user=operator)
    assert first == second
    assert AuthGroup.objects.count() == 1
    assert len(log_entries()) == 1
    assert group_events == []


def test_global_setup_without_stations_still_creates_the_group(operator):
    assert [g.name for g in station_groups_setup(mode="global", user=operator)] == ["All stations"]


def test_one_group_per_station_named_after_it(operator, committed, group_events):
    StationFactory(identity="CP001", name="Bay 1")
    StationFactory(identity="CP002", name="Bay 2")
    StationFactory(identity="CP003", name="Shared")
    StationFactory(identity="CP004", name="Shared")
    with committed():
        groups = station_groups_setup(mode="per_station", user=operator)

    assert groups_of_stations() == {
        "CP001": "Bay 1",
        "CP002": "Bay 2",
        "CP003": "Shared (CP003)",
        "CP004": "Shared (CP004)",
    }
    assert len(groups) == 4
    assert log_entries()[0].data["created_groups"] == [
        "Bay 1",
        "Bay 2",
        "Shared (CP003)",
        "Shared (CP004)",
    ]
    assert len(group_events) == 1
    assert len(group_events[0]["station_ids"]) == 4


def test_per_station_setup_is_idempotent_and_reuses_existing_groups(operator):
    existing = AuthGroupFactory(name="Bay 1", online_mode=OnlineMode.ALL_CARDS)
    StationFactory(identity="CP001", name="Bay 1")
    StationFactory(identity="CP002", name="Bay 2")
    station_groups_setup(mode="per_station", user=operator)
    station_groups_setup(mode="per_station", user=operator)
    assert AuthGroup.objects.count() == 2
    assert Station.objects.get(identity="CP001").auth_group == existing
    assert len(log_entries()) == 1


def test_custom_setup_changes_nothing(operator, committed, group_events):
    staff = AuthGroupFactory(name="Staff")
    StationFactory(identity="CP001", auth_group=staff)
    StationFactory(identity="CP002")
    with committed():
        groups = station_groups_setup(mode="custom", user=operator)
    assert groups == [staff]
    assert groups_of_stations() == {"CP001": "Staff", "CP002": None}
    assert log_entries() == []
    assert group_events == []


def test_unknown_setup_mode_is_refused(operator):
    with pytest.raises(ValidationError, match="Unknown group set-up"):
        station_groups_setup(mode="everything", user=operator)
