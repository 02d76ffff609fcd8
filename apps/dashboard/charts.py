"""Charts drawn on the server as plain SVG: no chart library to vendor, nothing to run in the page.

A live refresh re-renders them with the rest of the page's figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from apps.meters.selectors import MeterPoint

WIDTH = 640
HEIGHT = 220
LEFT = 44
RIGHT = 8
TOP = 10
BOTTOM = 24
PHASES = ("L1", "L2", "L3")


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    points: str  # SVG polyline points, "x,y x,y …"


@dataclass(frozen=True, slots=True)
class Tick:
    at_px: float
    label: str


@dataclass(frozen=True, slots=True)
class PhaseChart:
    """A meter's per-phase current over a period, with the zone's limit as a line."""

    width: int
    height: int
    left: int
    right_px: int
    top: int
    bottom_px: int
    series: tuple[Series, ...]
    limit_y: float | None
    y_ticks: tuple[Tick, ...]
    x_ticks: tuple[Tick, ...]
    point_count: int


def _nice_ceiling(value: float) -> float:
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000):
        if value <= step * 4:
            return step * 4
    return float(int(value) + 1)


def phase_chart(
    points: list[MeterPoint], *, start: datetime, end: datetime, limit_a: float | None
) -> PhaseChart:
    """Lines of L1, L2, L3 between ``start`` and ``end`` against ``limit_a``."""
    right_px = WIDTH - RIGHT
    bottom_px = HEIGHT - BOTTOM
    highest = max(
        [limit_a or 0.0]
        + [value for point in points for value in point.current_a if value is not None]
    )
    top_a = _nice_ceiling(max(highest * 1.1, 1.0))
    span_s = max((end - start).total_seconds(), 1.0)

    def x(at: datetime) -> float:
        return round(LEFT + (right_px - LEFT) * (at - start).total_seconds() / span_s, 1)

    def y(amps: float) -> float:
        return round(bottom_px - (bottom_px - TOP) * min(max(amps, 0.0), top_a) / top_a, 1)

    series = tuple(
        Series(
            name=name,
            points=" ".join(
                f"{x(point.at)},{y(point.current_a[index])}"
                for point in points
                if point.current_a[index] is not None and start <= point.at <= end
            ),
        )
        for index, name in enumerate(PHASES)
    )
    y_ticks = tuple(Tick(y(top_a * k / 4), f"{top_a * k / 4:g}") for k in range(5))
    x_ticks = tuple(
        Tick(
            x(start + (end - start) * k / 3),
            timezone.localtime(start + (end - start) * k / 3).strftime("%H:%M"),
        )
        for k in range(4)
    )
    return PhaseChart(
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        right_px=right_px,
        top=TOP,
        bottom_px=bottom_px,
        series=series,
        limit_y=None if limit_a is None else y(limit_a),
        y_ticks=y_ticks,
        x_ticks=x_ticks,
        point_count=len(points),
    )
