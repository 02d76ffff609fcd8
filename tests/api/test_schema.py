"""The OpenAPI document validates, and Swagger UI and ReDoc need no internet."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.test import Client

pytestmark = pytest.mark.django_db


def test_the_schema_validates_without_warnings(tmp_path):
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml")
    )
    text = (tmp_path / "schema.yaml").read_text()
    assert "/api/v2/zones/{id}/" in text and "/api/v2/stations/{identity}/connectors/" in text


def test_the_schema_is_served_to_anyone():
    response = Client().get("/api/v2/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    assert response.json()["openapi"].startswith("3.")


@pytest.mark.parametrize("path", ["/api/v2/docs/", "/api/v2/redoc/"])
def test_the_viewers_load_their_assets_from_evce(path):
    page = Client().get(path).content.decode()

    assert "/static/drf_spectacular_sidecar/" in page
    # Scripts and styles from evce; ReDoc's web fonts only fall back when offline.
    assert '<script src="http' not in page and "cdn.jsdelivr" not in page
