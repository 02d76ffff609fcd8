"""Simulated time.

Every timer of the simulator (heartbeats, sample intervals, EV charging,
profile validity, reconnection back-off) reads one clock, so tests can run a
whole charging session in a second by making simulated time run faster than
the wall clock. Timestamps sent to the central system come from the same
clock: with a time scale above 1 they run ahead of real time.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """What the simulator needs to know about time."""

    def now(self) -> datetime:
        """The current simulated UTC time (timezone-aware)."""
        ...

    def monotonic_s(self) -> float:
        """Simulated seconds elapsed since an arbitrary origin; never goes back."""
        ...

    async def sleep(self, duration_s: float) -> None:
        """Wait ``duration_s`` simulated seconds."""
        ...


class ScaledClock:
    """Simulated time running ``time_scale`` times faster than the wall clock.

    It starts at the real UTC time (or ``start``), so with ``time_scale=1``
    it simply is the real clock.
    """

    def __init__(self, time_scale: float = 1.0, *, start: datetime | None = None) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.time_scale = time_scale
        self._start_utc = start if start is not None else datetime.now(UTC)
        self._start_wall_s = time.monotonic()

    def monotonic_s(self) -> float:
        return (time.monotonic() - self._start_wall_s) * self.time_scale

    def now(self) -> datetime:
        return self._start_utc + timedelta(seconds=self.monotonic_s())

    async def sleep(self, duration_s: float) -> None:
        await asyncio.sleep(max(0.0, duration_s) / self.time_scale)

    def wall_s(self, simulated_s: float) -> float:
        """Wall-clock seconds that ``simulated_s`` simulated seconds take."""
        return simulated_s / self.time_scale


def format_ocpp_time(at: datetime) -> str:
    """ISO 8601 UTC with milliseconds and a ``Z``, as OCPP peers expect."""
    utc = at.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_ocpp_time(text: str) -> datetime:
    """Parse an OCPP dateTime; one without an offset is taken as UTC."""
    parsed = datetime.fromisoformat(text.strip())
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
