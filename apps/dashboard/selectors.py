"""What the dashboard pages show, gathered from the apps that own it."""

from __future__ import annotations

from dataclasses import dataclass

from apps.energy.selectors import ZoneFigures, zones_figures
from apps.zones.models import Zone


@dataclass(frozen=True, slots=True)
class ZoneRow:
    """A zone of the tree, depth first, with its live figures (None: not allocated yet)."""

    id: int
    name: str
    depth: int
    max_current_a: float
    dynamic: bool
    figures: ZoneFigures | None


def zone_rows() -> list[ZoneRow]:
    """Every zone, each parent followed by its sub-zones (by name), with its figures."""
    zones = list(
        Zone.objects.order_by("name").values("id", "name", "parent_id", "max_current_a", "meter_id")
    )
    figures = zones_figures()
    children: dict[int | None, list[dict]] = {}
    for zone in zones:
        children.setdefault(zone["parent_id"], []).append(zone)
    rows: list[ZoneRow] = []

    def visit(parent_id: int | None, depth: int) -> None:
        for zone in children.get(parent_id, ()):
            rows.append(
                ZoneRow(
                    id=zone["id"],
                    name=zone["name"],
                    depth=depth,
                    max_current_a=float(zone["max_current_a"]),
                    dynamic=zone["meter_id"] is not None,
                    figures=figures.get(zone["id"]),
                )
            )
            visit(zone["id"], depth + 1)

    visit(None, 0)
    return rows
