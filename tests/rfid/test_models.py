import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from apps.rfid.models import AuthGroup, Card, OfflineStrategy, OnlineMode
from tests.rfid.factories import AuthGroupFactory, CardFactory

pytestmark = pytest.mark.django_db


def errors_of(obj) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as excinfo:
        obj.full_clean()
    return excinfo.value.message_dict


@pytest.mark.parametrize("id_tag", ["A", "04A1B2C3", "x" * 20, "!~#-_.{}", "DEADBEEF00112233"])
def test_valid_id_tags_are_accepted(id_tag):
    CardFactory.build(id_tag=id_tag).full_clean()


@pytest.mark.parametrize(
    "id_tag", ["", "x" * 21, "04A1 B2C3", "04A1B2C3\n", "\t04A1", "carte-é", "04A1\x7f"]
)
def test_invalid_id_tags_are_refused(id_tag):
    assert "id_tag" in errors_of(CardFactory.build(id_tag=id_tag))


@pytest.mark.parametrize("other", ["04a1b2c3", "04a1B2c3"])
def test_id_tags_are_unique_whatever_the_case(other):
    CardFactory(id_tag="04A1B2C3")
    assert errors_of(CardFactory.build(id_tag=other)) == {
        "id_tag": [f"A card with id tag {other} already exists."]
    }


def test_an_exact_duplicate_is_reported_once():
    CardFactory(id_tag="04A1B2C3")
    assert errors_of(CardFactory.build(id_tag="04A1B2C3")) == {
        "id_tag": ["RFID card with this Id tag already exists."]
    }


def test_the_database_refuses_the_same_id_tag_in_another_case():
    CardFactory(id_tag="04A1B2C3")
    with pytest.raises(IntegrityError), transaction.atomic():
        CardFactory(id_tag="04a1b2c3")
    assert Card.objects.count() == 1


def test_a_card_can_be_edited_without_clashing_with_itself():
    card = CardFactory(id_tag="04A1B2C3")
    card.comment = "Fleet car 12"
    card.full_clean()


def test_comment_is_at_most_50_characters():
    CardFactory.build(comment="c" * 50).full_clean()
    assert "comment" in errors_of(CardFactory.build(comment="c" * 51))


def test_parent_id_tag_follows_the_id_tag_rules():
    CardFactory.build(parent_id_tag="FLEET").full_clean()
    assert "parent_id_tag" in errors_of(CardFactory.build(parent_id_tag="FLEET A"))


def test_new_cards_are_authorised_non_vip_and_dated():
    card = CardFactory()
    assert card.authorized
    assert not card.vip
    assert card.registered_at is not None
    assert card.last_seen_at is None


def test_a_card_can_be_in_several_groups():
    staff, fleet, visitors = AuthGroupFactory.create_batch(3)
    card = CardFactory(groups=[staff, fleet])
    assert set(card.groups.all()) == {staff, fleet}
    assert list(staff.cards.all()) == [card]
    assert not visitors.cards.exists()


def test_a_group_lists_several_cards():
    staff = AuthGroupFactory()
    cards = CardFactory.create_batch(3, groups=[staff])
    assert set(staff.cards.all()) == set(cards)


def test_deleting_a_group_keeps_its_cards():
    staff = AuthGroupFactory()
    card = CardFactory(groups=[staff])
    staff.delete()
    assert Card.objects.filter(pk=card.pk).exists()
    assert not card.groups.exists()


def test_group_defaults_are_known_cards_and_cache():
    group = AuthGroup.objects.create(name="Staff")
    assert group.online_mode == OnlineMode.KNOWN_CARDS
    assert group.offline_strategy == OfflineStrategy.USE_CACHE


@pytest.mark.parametrize(
    ("field", "value"), [("online_mode", "everyone"), ("offline_strategy", "maybe")]
)
def test_group_modes_are_checked(field, value):
    group = AuthGroupFactory()
    assert field in errors_of(AuthGroupFactory.build(**{field: value}))
    with pytest.raises(IntegrityError), transaction.atomic():
        AuthGroup.objects.filter(pk=group.pk).update(**{field: value})


def test_group_names_are_unique():
    AuthGroupFactory(name="Staff")
    assert "name" in errors_of(AuthGroupFactory.build(name="Staff"))
