"""Query parameters shared by the lists (SPEC §9): times, booleans, one 400 for all errors."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework.exceptions import ValidationError

DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")
TRUE, FALSE = frozenset({"true", "1", "yes"}), frozenset({"false", "0", "no"})


class QueryParams:
    """Reads a request's filters; every bad one is reported at once by :meth:`check`."""

    def __init__(self, request) -> None:
        self.params = request.query_params
        self.errors: dict[str, list[str]] = {}

    def time(self, name: str, *, end: bool = False) -> datetime | None:
        """An ISO 8601 date-time (UTC when it has no offset) or a date.

        A date is midnight of that day in the site's time zone; as an ``end``
        (``to``) it includes the whole day, so ``from=2026-11-01&to=2026-11-30``
        is November.
        """
        raw = self.params.get(name)
        if not raw:
            return None
        if not DATE_ONLY.fullmatch(raw):
            try:
                value = parse_datetime(raw)
            except ValueError:
                value = None
            if value is None:
                self.errors[name] = ["Not an ISO 8601 date or date-time."]
                return None
            return value if timezone.is_aware(value) else value.replace(tzinfo=UTC)
        try:
            day = parse_date(raw)
        except ValueError:
            day = None
        if day is None:
            self.errors[name] = ["Not an ISO 8601 date or date-time."]
            return None
        if end:
            day += timedelta(days=1)
        return timezone.make_aware(datetime.combine(day, time()))

    def boolean(self, name: str) -> bool | None:
        raw = self.params.get(name)
        if raw is None or raw == "":
            return None
        if raw.lower() in TRUE:
            return True
        if raw.lower() in FALSE:
            return False
        self.errors[name] = ["Not a boolean: true or false."]
        return None

    def text(self, name: str) -> str | None:
        return self.params.get(name) or None

    def integer(self, name: str) -> int | None:
        raw = self.params.get(name)
        if not raw:
            return None
        try:
            return int(raw)
        except ValueError:
            self.errors[name] = ["Not an integer."]
            return None

    def check(self) -> None:
        if self.errors:
            raise ValidationError(self.errors)


def time_parameter(name: str, description: str) -> OpenApiParameter:
    return OpenApiParameter(
        name,
        OpenApiTypes.DATETIME,
        OpenApiParameter.QUERY,
        description=f"{description} ISO 8601 date-time (UTC without offset) or date.",
    )
