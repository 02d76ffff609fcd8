"""One error shape for the whole API (SPEC §9).

Every error answers ``{"code": ..., "detail": ..., "fields": {...}}``:
``code`` is machine-readable (DRF's codes: ``invalid``, ``not_authenticated``,
``permission_denied``, ``not_found``, ...), ``detail`` a sentence for people,
``fields`` (400 only) every invalid field by its path (``a.b[0].c``) with its
messages. A service's ``ValidationError`` is bad input too: 400, never 500.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext as _
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

NON_FIELD = "non_field_errors"


class ErrorSerializer(serializers.Serializer):
    """The body of every error answer."""

    code = serializers.CharField()
    detail = serializers.CharField()
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), required=False
    )


def _flatten(detail: Any, path: str, out: dict[str, list[str]]) -> None:
    if isinstance(detail, dict):
        for name, value in detail.items():
            name = NON_FIELD if name == NON_FIELD_ERRORS else str(name)
            _flatten(value, f"{path}.{name}" if path else name, out)
    elif isinstance(detail, list) and any(isinstance(item, dict | list) for item in detail):
        for index, value in enumerate(detail):
            if value:
                _flatten(value, f"{path}[{index}]", out)
    elif isinstance(detail, list):
        out.setdefault(path or NON_FIELD, []).extend(str(item) for item in detail)
    else:
        out.setdefault(path or NON_FIELD, []).append(str(detail))


def field_errors(detail: Any) -> dict[str, list[str]]:
    """DRF's nested error detail as ``{"path": [messages]}``."""
    out: dict[str, list[str]] = {}
    _flatten(detail, "", out)
    return out


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {NON_FIELD: exc.messages}
        )
    response = exception_handler(exc, context)
    if response is None:
        return None  # not an API error: a bug, left to Django's 500 and its logging
    if isinstance(exc, exceptions.ValidationError):
        response.data = {
            "code": "invalid",
            "detail": _("Invalid input."),
            "fields": field_errors(exc.detail),
        }
        response.status_code = status.HTTP_400_BAD_REQUEST
        return response
    detail = getattr(exc, "detail", None)
    code = detail.code if isinstance(detail, exceptions.ErrorDetail) else "error"
    response.data = {"code": code, "detail": str(detail) if detail is not None else str(exc)}
    return response
