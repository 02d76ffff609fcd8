"""Bad input is a 400 naming every invalid field by its path, never a 500."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions

from apps.api.exceptions import api_exception_handler


def test_a_service_validation_error_is_400_with_its_fields():
    error = DjangoValidationError({"valid_until": ["The validity must end after it starts."]})

    response = api_exception_handler(error, {})

    assert response.status_code == 400
    assert response.data == {
        "code": "invalid",
        "detail": "Invalid input.",
        "fields": {"valid_until": ["The validity must end after it starts."]},
    }


def test_nested_errors_are_named_by_their_path():
    error = exceptions.ValidationError(
        {"value": ["Required."], "items": [{}, {"id_tag": ["Too long."]}]}
    )

    fields = api_exception_handler(error, {}).data["fields"]

    assert fields == {"value": ["Required."], "items[1].id_tag": ["Too long."]}


def test_an_error_without_fields_keeps_the_shape():
    response = api_exception_handler(DjangoValidationError("Nope."), {})

    assert response.data["fields"] == {"non_field_errors": ["Nope."]}


@pytest.fixture
def redis_out_of_reach(settings, monkeypatch):
    """Every hot-state client pointed at a port where nothing listens."""
    from apps.stations import presence
    from evce_site import hotstate
    from tests.conftest import free_port

    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    monkeypatch.setattr(hotstate, "_client", None)
    monkeypatch.setattr(presence, "_sync_client", None)


@pytest.mark.django_db
@pytest.mark.usefixtures("redis_out_of_reach")
def test_without_redis_live_reads_are_503_not_500(ebms):
    from django.test import Client

    from tests.stations.factories import StationFactory

    StationFactory()

    response = ebms.get("/api/v2/stations/")
    metrics = Client().get("/metrics")

    assert response.status_code == 503 and response.json()["code"] == "unavailable"
    assert metrics.status_code == 503
