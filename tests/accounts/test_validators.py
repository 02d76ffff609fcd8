import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError

from apps.accounts.validators import (
    EvcePasswordValidator,
    password_problems,
    validate_username_not_reserved,
)

GOOD = "Charge&Park2024"


def test_a_password_meeting_every_rule_has_no_problem():
    assert password_problems(GOOD) == []
    EvcePasswordValidator().validate(GOOD)


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("Charge&Pk24", "at least 12 characters"),
        ("CHARGE&PARK2024", "a lower-case letter"),
        ("charge&park2024", "an upper-case letter"),
        ("Charge&Parking", "a digit"),
        ("ChargePark2024", "a special character among @$!%?&"),
    ],
)
def test_each_broken_rule_is_reported_alone(password, problem):
    assert password_problems(password) == [problem]


@pytest.mark.parametrize("special", list("@$!%?&"))
def test_every_listed_special_character_counts(special):
    assert password_problems(f"ChargePark24{special}") == []


@pytest.mark.parametrize("other", list("#*-_.+=^~ "))
def test_specials_outside_the_list_do_not_count(other):
    assert password_problems(f"ChargePark24{other}") == ["a special character among @$!%?&"]


def test_a_password_breaking_every_rule_reports_all_of_them():
    assert password_problems("") == [
        "at least 12 characters",
        "a lower-case letter",
        "an upper-case letter",
        "a digit",
        "a special character among @$!%?&",
    ]


def test_the_validator_lists_every_missing_rule_in_one_message():
    with pytest.raises(ValidationError) as excinfo:
        EvcePasswordValidator().validate("short")
    (message,) = excinfo.value.messages
    assert excinfo.value.error_list[0].code == "password_rules"
    for rule in ("at least 12 characters", "an upper-case letter", "a digit", "@$!%?&"):
        assert rule in message
    assert "a lower-case letter" not in message


def test_django_password_validation_applies_the_rules():
    with pytest.raises(ValidationError) as excinfo:
        validate_password("alllowercaseletters")
    assert any("an upper-case letter" in m for m in excinfo.value.messages)
    validate_password(GOOD)


def test_help_text_states_the_rules():
    text = EvcePasswordValidator().get_help_text()
    assert "12" in text
    assert "@$!%?&" in text


@pytest.mark.parametrize(
    "name", ["root", "admin", "administrator", "ADMIN", "Root", "AdMiNiStRaToR"]
)
def test_reserved_usernames_are_refused_in_any_case(name):
    with pytest.raises(ValidationError) as excinfo:
        validate_username_not_reserved(name)
    assert excinfo.value.error_list[0].code == "reserved_username"


@pytest.mark.parametrize("name", ["admin1", "sysadmin", "rooter", "installer", "operator"])
def test_names_merely_containing_a_reserved_word_are_allowed(name):
    validate_username_not_reserved(name)
