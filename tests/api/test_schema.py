"""The OpenAPI document validates, and Swagger UI and ReDoc need no internet."""

from __future__ import annotations

import pytest
import yaml
from django.core.management import call_command
from django.test import Client

pytestmark = pytest.mark.django_db

RESOURCES = {
    "/api/v2/site/",
    "/api/v2/zones/",
    "/api/v2/zones/{id}/",
    "/api/v2/zones/{id}/reduction/",
    "/api/v2/stations/",
    "/api/v2/stations/{identity}/",
    "/api/v2/stations/{identity}/connectors/{connector_id}/",
    "/api/v2/stations/{identity}/connectors/{connector_id}/availability/",
    "/api/v2/stations/{identity}/remote-start/",
    "/api/v2/stations/{identity}/reset/",
    "/api/v2/stations/{identity}/unlock/",
    "/api/v2/stations/{identity}/ocpp/{ocpp_action}/",
    "/api/v2/transactions/",
    "/api/v2/transactions/{id}/",
    "/api/v2/transactions/{id}/remote-stop/",
    "/api/v2/transactions/{id}/force-stop/",
    "/api/v2/transactions/export.csv",
    "/api/v2/meters/",
    "/api/v2/meters/{id}/",
    "/api/v2/meters/{id}/readings/",
    "/api/v2/inputs/",
    "/api/v2/inputs/{id}/",
    "/api/v2/cards/",
    "/api/v2/cards/{id_tag}/",
    "/api/v2/device-log/",
}


def test_the_schema_validates_without_warnings(tmp_path):
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml")
    )
    schema = yaml.safe_load((tmp_path / "schema.yaml").read_text())
    assert RESOURCES - set(schema["paths"]) == set()
    operations = [
        (method, path)
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
        if method in {"get", "put", "post", "patch", "delete"} and not operation.get("summary")
    ]
    assert operations == [], "every operation has a summary"


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
