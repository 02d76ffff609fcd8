"""The web UI in French: ``Accept-Language: fr`` and the user menu's language switch."""

from __future__ import annotations

import pytest
from django.utils import translation

from apps.dashboard.reasons import reason_words
from apps.dashboard.templatetags.records import status_words
from apps.energy.allocator import Reason
from tests.accounts.factories import STRONG_PASSWORD, UserFactory
from tests.dashboard import test_pages
from tests.dashboard.test_reasons import ZONES, _setpoint

pytestmark = pytest.mark.django_db

site = test_pages.site  # the station, zones and session of the page tests

FRENCH = {"HTTP_ACCEPT_LANGUAGE": "fr-FR,fr;q=0.9,en;q=0.5"}


@pytest.fixture(autouse=True)
def _hot_state(hot_state):
    """The status bar reads station presence from Redis."""


def _login(client, username: str = "olivia", **headers):
    UserFactory(username=username)
    response = client.post(
        "/login/", {"username": username, "password": STRONG_PASSWORD}, **headers
    )
    assert response.status_code == 302


def test_the_login_page_follows_accept_language(client):
    page = client.get("/login/", **FRENCH).content.decode()
    assert '<html lang="fr">' in page
    assert "Se connecter" in page and "Nom d&#x27;utilisateur" in page
    assert "Log in" not in page
    english = client.get("/login/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert '<html lang="en">' in english and "Log in" in english


def test_a_wrong_password_is_explained_in_french(client):
    UserFactory(username="olivia")
    page = client.post("/login/", {"username": "olivia", "password": "bad"}, **FRENCH)
    assert "Nom d&#x27;utilisateur ou mot de passe incorrect." in page.content.decode()


def test_the_dashboard_follows_accept_language(client):
    _login(client)
    page = client.get("/", **FRENCH).content.decode()
    assert '<html lang="fr">' in page
    for words in ("Tableau de bord", "Sessions en cours", "Bornes par état", "Se déconnecter"):
        assert words in page, words
    assert "Ongoing sessions" not in page and "Log out" not in page


def test_the_language_switch_turns_the_pages_to_french_and_back(client):
    _login(client)
    assert "Ongoing sessions" in client.get("/").content.decode()
    switched = client.post("/i18n/setlang/", {"language": "fr", "next": "/"})
    assert switched.status_code == 302 and switched.url == "/"
    page = client.get("/").content.decode()  # no Accept-Language: the choice is kept
    assert '<html lang="fr">' in page and "Sessions en cours" in page
    # The choice outlives the session: the login page is French after logging out.
    client.post("/logout/")
    assert "Se connecter" in client.get("/login/").content.decode()
    client.post("/i18n/setlang/", {"language": "en", "next": "/login/"})
    assert "Log in" in client.get("/login/", **FRENCH).content.decode()


def test_the_user_menu_offers_english_and_french(client):
    _login(client)
    page = client.get("/", **FRENCH).content.decode()
    assert 'action="/i18n/setlang/"' in page
    assert '<option value="fr" selected>Français</option>' in page
    assert '<option value="en">English</option>' in page


def test_an_unknown_language_changes_nothing(client):
    _login(client)
    response = client.post("/i18n/setlang/", {"language": "xx", "next": "/"})
    assert response.status_code == 302
    assert "Ongoing sessions" in client.get("/").content.decode()


@pytest.mark.parametrize(
    ("reason", "kwargs", "words"),
    [
        (Reason.SHED_PRIORITY, {}, "délesté : priorité"),
        (Reason.DEGRADED, {}, "dégradé : compteur perdu"),
        (
            Reason.ZONE_LIMIT,
            {"limiting_zone_id": 7, "limiting_phase": 2},
            "limité par Main switchboard L2",
        ),
    ],
)
def test_setpoint_reasons_read_in_french(reason, kwargs, words):
    with translation.override("fr"):
        assert reason_words(_setpoint(reason, **kwargs), ZONES) == words


def test_the_station_view_speaks_french_down_to_the_reasons(client, site):
    client.force_login(UserFactory(role="operator"))
    body = client.get("/stations/BAY-1/", **FRENCH).content.decode()
    charging = body[body.index('data-connector="1"') :]
    charging = charging[: charging.index("</tr>")]
    assert "En charge" in charging and "limité par Main switchboard L2" in charging
    idle = body[body.index('data-connector="2"') :]
    assert "Disponible" in idle[: idle.index("</tr>")]
    home = client.get("/", **FRENCH).content.decode()
    assert "limité par Main switchboard L2" in home and "En charge" in home


def test_an_unknown_connector_status_is_shown_as_the_station_sent_it():
    with translation.override("fr"):
        assert status_words("SuspendedEV") == "Suspendue par le véhicule"
        assert status_words("Occupied") == "Occupied"
        assert status_words("") == ""


def test_the_device_log_page_speaks_french(client):
    client.force_login(UserFactory(role="operator"))
    page = client.get("/maintenance/log/", **FRENCH).content.decode()
    assert "<h1>Journal de l'appareil</h1>" in page and "tous les niveaux" in page
    assert "Aucune entrée ne correspond à ces filtres." in page
