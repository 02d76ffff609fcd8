"""One error shape for the whole API (SPEC §9).

Every error answers ``{"code": ..., "detail": ..., "fields": {...}}``:
``code`` is machine-readable (DRF's codes: ``invalid``, ``not_authenticated``,
``permission_denied``, ``not_found``, ...), ``detail`` a sentence for people,
``fields`` (400 only) every invalid field by its path (``a.b[0].c``) with its
messages. A service's ``ValidationError`` is bad input too: 400, never 500.

A command to a station fails the way SPEC §9 says: 409 ``station_offline``,
504 ``station_timeout``, 502 ``call_error`` with the station's ``error_code``
and ``error_description``; an invalid OCPP payload is a 400. Redis out of
reach is a 503 ``unavailable``, not a 500.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext as _
from redis.exceptions import RedisError
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from apps.central_system import commands

NON_FIELD = "non_field_errors"


class ErrorSerializer(serializers.Serializer):
    """The body of every error answer."""

    code = serializers.CharField()
    detail = serializers.CharField()
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), required=False
    )
    error_code = serializers.CharField(
        required=False, help_text="502 only: the OCPP error code of the station's CALLERROR."
    )
    error_description = serializers.CharField(
        required=False, help_text="502 only: the station's description of its CALLERROR."
    )


class StationConflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The station is offline."
    default_code = "station_offline"


class StateConflict(exceptions.APIException):
    """The object's state forbids the action (e.g. stopping a stopped session)."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The current state forbids this action."
    default_code = "state_conflict"


class StationTimeout(exceptions.APIException):
    status_code = status.HTTP_504_GATEWAY_TIMEOUT
    default_detail = "The station did not answer in time."
    default_code = "station_timeout"


class StationCallError(exceptions.APIException):
    status_code = status.HTTP_502_BAD_GATEWAY
    default_detail = "The station answered with an error."
    default_code = "call_error"


def _command_error(exc: commands.CommandError) -> Response:
    if isinstance(exc, commands.InvalidCommand):
        return api_exception_handler(exceptions.ValidationError({"payload": [str(exc)]}), {})
    if isinstance(exc, commands.CallError):
        error = StationCallError()
        body = {
            "code": error.default_code,
            "detail": str(error.default_detail),
            "error_code": exc.code,
            "error_description": exc.description,
        }
        return Response(body, status=error.status_code)
    error = StationTimeout(str(exc)) if isinstance(exc, commands.CallTimeout) else None
    error = error or StationConflict(str(exc))
    return Response({"code": error.default_code, "detail": str(exc)}, status=error.status_code)


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


class HotStateUnavailable(exceptions.APIException):
    """Redis (live figures, station connections) cannot be reached: try again shortly."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "Live state is unavailable for a moment; try again."
    default_code = "unavailable"


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, commands.CommandError):
        return _command_error(exc)
    if isinstance(exc, RedisError):
        exc = HotStateUnavailable()
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
