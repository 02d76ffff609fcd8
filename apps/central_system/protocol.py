"""OCPP 1.6-J framing: parse frames, validate payloads, name the CALLERROR.

The JSON schemas are the official OCPP 1.6 ones shipped with the ``ocpp``
library (core profile and security extension). Error codes keep the spelling
of OCPP-J 1.6 §4.2.3 — ``FormationViolation`` and
``OccurenceConstraintViolation`` — which the errata keep on purpose.
"""

from __future__ import annotations

import decimal
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

import ocpp.v16
from django.utils.dateparse import parse_datetime
from jsonschema import Draft4Validator, FormatChecker
from jsonschema.exceptions import ValidationError as SchemaError
from ocpp.v16.enums import Action

SUBPROTOCOL = "ocpp1.6"
CALL, CALLRESULT, CALLERROR = 2, 3, 4
MAX_UNIQUE_ID_LENGTH = 36
# Frames that cannot be parsed at all are logged with this message type.
UNPARSABLE = 0


class ErrorCode(StrEnum):
    NOT_IMPLEMENTED = "NotImplemented"  # action not known by the receiver
    NOT_SUPPORTED = "NotSupported"  # action known but not supported here
    INTERNAL_ERROR = "InternalError"
    PROTOCOL_ERROR = "ProtocolError"  # frame or payload incomplete
    SECURITY_ERROR = "SecurityError"
    FORMATION_VIOLATION = "FormationViolation"
    PROPERTY_CONSTRAINT_VIOLATION = "PropertyConstraintViolation"
    OCCURENCE_CONSTRAINT_VIOLATION = "OccurenceConstraintViolation"
    TYPE_CONSTRAINT_VIOLATION = "TypeConstraintViolation"
    GENERIC_ERROR = "GenericError"


# Messages a charge point sends to the central system (core + security extension).
CP_TO_CS_ACTIONS: frozenset[str] = frozenset(
    {
        Action.authorize,
        Action.boot_notification,
        Action.data_transfer,
        Action.diagnostics_status_notification,
        Action.firmware_status_notification,
        Action.heartbeat,
        Action.meter_values,
        Action.start_transaction,
        Action.status_notification,
        Action.stop_transaction,
        Action.security_event_notification,
        Action.sign_certificate,
        Action.signed_firmware_status_notification,
        Action.log_status_notification,
    }
)
# DataTransfer goes both ways.
CS_TO_CP_ACTIONS: frozenset[str] = frozenset(
    a.value for a in Action if a not in CP_TO_CS_ACTIONS or a == Action.data_transfer
)
ALL_ACTIONS: frozenset[str] = frozenset(a.value for a in Action)


class OcppError(Exception):
    """A failure that is answered to the peer with a CALLERROR."""

    def __init__(
        self, code: ErrorCode, description: str = "", details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description[:255]
        self.details = details or {}


class FrameError(OcppError):
    """A frame that is JSON but not a valid OCPP-J message."""

    def __init__(
        self, unique_id: str | None, code: ErrorCode, description: str, *, answerable: bool = True
    ) -> None:
        super().__init__(code, description)
        # "-1" when no id could be read: the peer can still see the error in its log.
        self.unique_id = unique_id if unique_id is not None else "-1"
        # CALLRESULTs and CALLERRORs are never answered, whatever their defect.
        self.answerable = answerable


class NotJson(Exception):
    """The frame is not JSON text: OCPP-J gives no way to answer it."""


@dataclass(frozen=True, slots=True)
class Call:
    unique_id: str
    action: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CallResult:
    unique_id: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CallError:
    unique_id: str
    code: str
    description: str
    details: dict[str, Any] = field(default_factory=dict)


Frame = Call | CallResult | CallError


def parse_frame(text: str) -> Frame:
    """Decode one WebSocket text frame into a CALL, CALLRESULT or CALLERROR.

    Raises ``NotJson`` for text that is not JSON, ``FrameError`` for JSON that
    does not have the shape of an OCPP-J message.
    """
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise NotJson(str(exc)) from None
    if not isinstance(data, list) or not data:
        raise FrameError(None, ErrorCode.FORMATION_VIOLATION, "A message must be a JSON array.")
    type_id = data[0]
    raw_id = data[1] if len(data) > 1 else None
    unique_id = raw_id if isinstance(raw_id, str) else None
    if isinstance(type_id, bool) or type_id not in (CALL, CALLRESULT, CALLERROR):
        raise FrameError(
            unique_id,
            ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
            f"Unknown MessageTypeId {type_id!r}.",
            answerable=False,
        )
    answerable = type_id == CALL
    if unique_id is None:
        raise FrameError(
            None,
            ErrorCode.FORMATION_VIOLATION,
            "The UniqueId must be a string.",
            answerable=answerable,
        )
    if len(unique_id) > MAX_UNIQUE_ID_LENGTH:
        raise FrameError(
            unique_id,
            ErrorCode.TYPE_CONSTRAINT_VIOLATION,
            f"The UniqueId is longer than {MAX_UNIQUE_ID_LENGTH} characters.",
            answerable=answerable,
        )
    expected = {CALL: 4, CALLRESULT: 3, CALLERROR: 5}[type_id]
    if len(data) < expected:
        raise FrameError(
            unique_id, ErrorCode.PROTOCOL_ERROR, "The message is incomplete.", answerable=answerable
        )
    if len(data) > expected:
        raise FrameError(
            unique_id,
            ErrorCode.FORMATION_VIOLATION,
            "The message has too many elements.",
            answerable=answerable,
        )
    if type_id == CALL:
        action, payload = data[2], data[3]
        if not isinstance(action, str):
            raise FrameError(unique_id, ErrorCode.FORMATION_VIOLATION, "The Action is a string.")
        if not isinstance(payload, dict):
            raise FrameError(
                unique_id, ErrorCode.FORMATION_VIOLATION, "The payload must be a JSON object."
            )
        return Call(unique_id, action, payload)
    if type_id == CALLRESULT:
        if not isinstance(data[2], dict):
            raise FrameError(
                unique_id,
                ErrorCode.FORMATION_VIOLATION,
                "The payload must be a JSON object.",
                answerable=False,
            )
        return CallResult(unique_id, data[2])
    code, description, details = data[2], data[3], data[4]
    if not isinstance(code, str) or not isinstance(description, str):
        raise FrameError(
            unique_id,
            ErrorCode.FORMATION_VIOLATION,
            "ErrorCode and ErrorDescription are strings.",
            answerable=False,
        )
    return CallError(unique_id, code, description, details if isinstance(details, dict) else {})


def encode_call(unique_id: str, action: str, payload: dict[str, Any]) -> str:
    return _dumps([CALL, unique_id, action, payload])


def encode_result(unique_id: str, payload: dict[str, Any]) -> str:
    return _dumps([CALLRESULT, unique_id, payload])


def encode_error(unique_id: str, error: OcppError) -> str:
    return _dumps([CALLERROR, unique_id, str(error.code), error.description, error.details])


def _dumps(data: list) -> str:
    return json.dumps(data, separators=(",", ":"), cls=_Encoder)


class _Encoder(json.JSONEncoder):
    def default(self, o):
        if isinstance(o, decimal.Decimal):
            return float(o)
        if isinstance(o, datetime):
            return format_datetime(o)
        return super().default(o)


def plain_json(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload with decimals and datetimes turned into JSON numbers and strings."""
    return json.loads(json.dumps(payload, cls=_Encoder))


def format_datetime(value: datetime) -> str:
    """OCPP dateTime: UTC, millisecond precision, ``Z`` suffix."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_ocpp_datetime(value: str) -> datetime | None:
    """Parse an OCPP dateTime; a value without offset is taken as UTC."""
    try:
        parsed = parse_datetime(value)
    except ValueError:
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


# The official schemas as shipped with the library (read here rather than through
# its validator cache, whose float parsing is keyed by name only).
_SCHEMA_DIR = Path(ocpp.v16.__file__).parent / "schemas"

_format_checker = FormatChecker(formats=())


@_format_checker.checks("date-time")
def _is_datetime(value: object) -> bool:
    return not isinstance(value, str) or parse_ocpp_datetime(value) is not None


@cache
def _validator(message_type: int, action: str) -> tuple[Draft4Validator, bool]:
    """The schema validator of a request or response, and whether it needs decimals.

    Schemas with ``multipleOf`` (charging schedules) are checked on decimals:
    binary floats such as 21.4 would fail a 0.1 step otherwise.
    """
    name = f"{action}Response" if message_type == CALLRESULT else action
    text = (_SCHEMA_DIR / f"{name}.json").read_text(encoding="utf-8-sig")
    needs_decimal = "multipleOf" in text
    schema = json.loads(text, parse_float=decimal.Decimal if needs_decimal else float)
    return Draft4Validator(schema, format_checker=_format_checker), needs_decimal


# jsonschema keyword → the OCPP error that describes the violation.
_KEYWORD_ERRORS = {
    "required": ErrorCode.OCCURENCE_CONSTRAINT_VIOLATION,
    "minItems": ErrorCode.OCCURENCE_CONSTRAINT_VIOLATION,
    "maxItems": ErrorCode.OCCURENCE_CONSTRAINT_VIOLATION,
    "type": ErrorCode.TYPE_CONSTRAINT_VIOLATION,
    "maxLength": ErrorCode.TYPE_CONSTRAINT_VIOLATION,
    "minLength": ErrorCode.TYPE_CONSTRAINT_VIOLATION,
    "format": ErrorCode.TYPE_CONSTRAINT_VIOLATION,
    "pattern": ErrorCode.TYPE_CONSTRAINT_VIOLATION,
    "enum": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "const": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "minimum": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "maximum": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "exclusiveMinimum": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "exclusiveMaximum": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "multipleOf": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "additionalProperties": ErrorCode.FORMATION_VIOLATION,
}


def validate_payload(action: str, payload: dict[str, Any], *, response: bool = False) -> None:
    """Check a request (or, with ``response``, a response) payload against its schema.

    Raises ``OcppError`` with the code that names the first violation found.
    """
    validator, needs_decimal = _validator(CALLRESULT if response else CALL, action)
    data = (
        json.loads(json.dumps(payload), parse_float=decimal.Decimal) if needs_decimal else payload
    )
    error = next(validator.iter_errors(data), None)
    if error is None:
        return
    error = _most_relevant(error)
    if error.validator == "type" and not error.path:
        code = ErrorCode.FORMATION_VIOLATION
    else:
        code = _KEYWORD_ERRORS.get(str(error.validator), ErrorCode.FORMATION_VIOLATION)
    where = "/".join(str(p) for p in error.path) or "(payload)"
    raise OcppError(code, f"{where}: {_short(error)}", {"field": where})


def _most_relevant(error: SchemaError) -> SchemaError:
    # The deepest error names the field that is actually wrong.
    while error.context:
        error = max(error.context, key=lambda e: len(e.path))
    return error


def _short(error: SchemaError) -> str:
    message = error.message
    return message if len(message) <= 200 else message[:197] + "..."


def utc_now_text() -> str:
    return format_datetime(datetime.now(UTC))
