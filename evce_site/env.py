"""Typed readers for configuration taken from environment variables.

Every setting of evce comes from the environment with a documented default,
read in ``evce_site.settings`` and nowhere else. A value that cannot be
parsed stops the start-up with ``ImproperlyConfigured`` naming the variable,
instead of silently falling back, so a typo in a deployment is seen at once.

Each helper records the names it reads: the settings module keeps that list
(``ENV_VARIABLES``), and a test holds it equal to the README's table.
"""

from __future__ import annotations

import ipaddress
import math
import os
import zoneinfo
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}

# Every variable name read through these helpers, in the order first read.
_read: dict[str, None] = {}


def variables_read() -> tuple[str, ...]:
    """The names of the environment variables read so far through these helpers."""
    return tuple(_read)


def _raw(name: str) -> str | None:
    _read.setdefault(name)
    return os.environ.get(name)


def env_str(name: str, default: str) -> str:
    raw = _raw(name)
    return default if raw is None else raw


def env_secret(name: str, default: str) -> str:
    """A secret from ``name``, or from the file named by ``<name>_FILE`` (Docker secrets).

    The file's trailing newline is dropped. Setting both, or naming a file
    that cannot be read, stops the start-up: a secret silently taken from
    the wrong place is worse than none.
    """
    file_variable = f"{name}_FILE"
    raw = _raw(name)
    path = _raw(file_variable)
    if path is None:
        return default if raw is None else raw
    if raw is not None:
        raise ImproperlyConfigured(f"{name} and {file_variable} are both set: set only one.")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ImproperlyConfigured(f"{file_variable}={path!r} cannot be read: {reason}.") from None
    return text.rstrip("\r\n")


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    """One of ``choices`` (compared case-insensitively, returned as spelled there)."""
    raw = _raw(name)
    if raw is None:
        return default
    by_lower = {choice.lower(): choice for choice in choices}
    value = by_lower.get(raw.strip().lower())
    if value is None:
        raise ImproperlyConfigured(f"{name}={raw!r} is not one of {', '.join(choices)}.")
    return value


def env_ip_address(name: str, default: str) -> str:
    """An IPv4 or IPv6 address (a listening interface: ``0.0.0.0``, ``::``, ``127.0.0.1``)."""
    value = env_str(name, default).strip()
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ImproperlyConfigured(
            f"{name}={value!r} is not an IP address (e.g. 0.0.0.0, 127.0.0.1 or ::)."
        ) from None
    return value


def env_time_zone(name: str, default: str) -> str:
    """An IANA time zone name known to this system (``UTC``, ``Europe/Paris``)."""
    value = env_str(name, default).strip()
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ImproperlyConfigured(
            f"{name}={value!r} is not a known time zone (e.g. UTC, Europe/Paris)."
        ) from None
    return value


def env_bool(name: str, default: bool) -> bool:
    raw = _raw(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use 1/0, true/false, yes/no).")


def env_int(
    name: str, default: int, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    raw = _raw(name)
    if raw is None:
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer.") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value} is below the minimum {minimum}.")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name}={value} is above the maximum {maximum}.")
    return value


def env_float(
    name: str, default: float, *, minimum: float | None = None, maximum: float | None = None
) -> float:
    raw = _raw(name)
    if raw is None:
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number.") from None
    if not math.isfinite(value):
        raise ImproperlyConfigured(f"{name}={raw!r} is not a finite number.")
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value:g} is below the minimum {minimum:g}.")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name}={value:g} is above the maximum {maximum:g}.")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = _raw(name)
    if raw is None:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


@dataclass(frozen=True, slots=True)
class DatabaseUrl:
    engine: str
    name: str
    user: str
    password: str
    host: str
    port: str


_ENGINES = {
    "postgres": "django.db.backends.postgresql",
    "postgresql": "django.db.backends.postgresql",
    "pgsql": "django.db.backends.postgresql",
    "sqlite": "django.db.backends.sqlite3",
}


def parse_database_url(url: str) -> DatabaseUrl:
    """Parse ``postgres://user:pass@host:port/name`` or ``sqlite:///path``."""
    parts = urlsplit(url)
    engine = _ENGINES.get(parts.scheme)
    if engine is None:
        raise ImproperlyConfigured(
            f"DATABASE_URL scheme {parts.scheme!r} is not supported (use postgres:// or sqlite:///)."
        )
    if engine.endswith("sqlite3"):
        path = unquote(parts.path)
        if not path or path == "/":
            raise ImproperlyConfigured("DATABASE_URL sqlite:/// needs a file path.")
        # sqlite:///relative.db -> "relative.db"; sqlite:////abs/evce.db -> "/abs/evce.db"
        name = path[1:]
        return DatabaseUrl(engine, name, "", "", "", "")
    name = unquote(parts.path.lstrip("/"))
    if not name:
        raise ImproperlyConfigured("DATABASE_URL has no database name.")
    try:
        port = parts.port
    except ValueError:
        raise ImproperlyConfigured("DATABASE_URL has an invalid port.") from None
    return DatabaseUrl(
        engine=engine,
        name=name,
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        host=parts.hostname or "",
        port=str(port or ""),
    )
