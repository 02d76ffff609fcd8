"""A decorator for admin fields that show hot state (Redis) rather than database rows."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.utils.translation import gettext_lazy as _
from redis.exceptions import RedisError


def hot_state_display(*, description: str) -> Callable:
    """An admin display method of live state: "-" for an unsaved object, and
    "unavailable" while Redis cannot be reached, so the page still opens."""

    def decorate(method: Callable[[Any, Any], str]) -> Callable[[Any, Any], str]:
        @admin.display(description=description)
        @functools.wraps(method)
        def display(model_admin: Any, obj: Any) -> str:
            if obj is None or obj.pk is None:
                return "-"
            try:
                return method(model_admin, obj)
            except RedisError:
                return _("unavailable")

        return display

    return decorate
