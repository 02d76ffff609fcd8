"""Bad input is a 400 naming every invalid field by its path, never a 500."""

from __future__ import annotations

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
