"""The zone tree, indexed for the allocator."""

from __future__ import annotations

from collections.abc import Iterable

from .model import Zone


class ZoneTree:
    """Zones sorted by id, each with its chain of ancestors.

    ``chains[i]`` lists zone ``i`` then its parent up to the root: a connector in
    zone ``i`` counts against every zone of that chain (SPEC §3.2).
    """

    __slots__ = ("chains", "index", "parents", "zones")

    def __init__(self, zones: Iterable[Zone]) -> None:
        self.zones: tuple[Zone, ...] = tuple(sorted(zones, key=lambda zone: zone.zone_id))
        self.index: dict[int, int] = {}
        for position, zone in enumerate(self.zones):
            if zone.zone_id in self.index:
                raise ValueError(f"duplicate zone id {zone.zone_id}")
            self.index[zone.zone_id] = position
        parents: list[int | None] = []
        for zone in self.zones:
            if zone.parent_id is None:
                parents.append(None)
            elif zone.parent_id not in self.index:
                raise ValueError(f"zone {zone.zone_id} has unknown parent {zone.parent_id}")
            else:
                parents.append(self.index[zone.parent_id])
        self.parents: tuple[int | None, ...] = tuple(parents)
        chains: list[tuple[int, ...]] = []
        for position in range(len(self.zones)):
            chain = [position]
            parent = self.parents[position]
            while parent is not None:
                if len(chain) > len(self.zones):
                    raise ValueError(f"zone {self.zones[position].zone_id} is in a parent cycle")
                chain.append(parent)
                parent = self.parents[parent]
            chains.append(tuple(chain))
        self.chains: tuple[tuple[int, ...], ...] = tuple(chains)

    def __len__(self) -> int:
        return len(self.zones)

    def voltage_v(self, position: int, default_v: float) -> float:
        """Nominal voltage of a zone: its own, else its nearest ancestor's, else the site's."""
        for zone_position in self.chains[position]:
            voltage_v = self.zones[zone_position].nominal_voltage_v
            if voltage_v is not None:
                return voltage_v
        return default_v
