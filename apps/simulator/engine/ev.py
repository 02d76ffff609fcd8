"""Electric vehicles: what they ask for and what they draw.

The curve is the usual AC-charging shape: the onboard charger draws its
maximum current (constant-current phase) until the battery reaches the taper
state of charge, then the battery management tapers the current linearly
down to a trickle, and the EV stops drawing when full. The EV never draws
more than the station offers, and, per IEC 61851-1, an offer below 6 A means
"do not charge".
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

IEC61851_MIN_CURRENT_A = 6.0
"""Below this pilot-signal current an EV must not charge (IEC 61851-1)."""

NOMINAL_VOLTAGE_V = 230.0
"""Phase-to-neutral voltage used to turn currents into power."""


@dataclass(frozen=True, slots=True)
class EvModel:
    """A kind of EV: its onboard charger and battery."""

    name: str
    phases: int
    max_current_a: float
    battery_kwh: float
    taper_soc: float = 0.8
    trickle_fraction: float = 0.25
    efficiency: float = 0.9

    def __post_init__(self) -> None:
        if self.phases not in (1, 2, 3):
            raise ValueError("an EV charges on 1, 2 or 3 phases")
        if self.max_current_a <= 0 or self.battery_kwh <= 0:
            raise ValueError("current and capacity must be positive")
        if not 0 < self.taper_soc < 1:
            raise ValueError("taper_soc must be between 0 and 1")

    def demand_current_a(self, soc: float) -> float:
        """Current per phase the EV asks for at state of charge ``soc`` (0-1).

        Full current up to ``taper_soc``, then a linear taper down to
        ``trickle_fraction`` of it at 100 % (so a charge ends instead of
        approaching full forever), then 0 once full.
        """
        if soc >= 1.0:
            return 0.0
        if soc <= self.taper_soc:
            return self.max_current_a
        remaining = (1.0 - soc) / (1.0 - self.taper_soc)
        fraction = self.trickle_fraction + (1.0 - self.trickle_fraction) * remaining
        return self.max_current_a * fraction


# A mix of common AC charging behaviours (not specific car models).
EV_CATALOGUE: tuple[EvModel, ...] = (
    EvModel("city car 1×16 A", phases=1, max_current_a=16, battery_kwh=37),
    EvModel("compact 1×32 A", phases=1, max_current_a=32, battery_kwh=58),
    EvModel("sedan 3×16 A", phases=3, max_current_a=16, battery_kwh=64),
    EvModel("SUV 3×32 A", phases=3, max_current_a=32, battery_kwh=90),
    EvModel("van 3×16 A", phases=3, max_current_a=16, battery_kwh=75),
)


class Ev:
    """One EV plugged in somewhere: a model and its battery's state of charge."""

    def __init__(self, model: EvModel, soc: float) -> None:
        self.model = model
        self.soc = min(1.0, max(0.0, soc))
        self.energy_wh = 0.0

    def __repr__(self) -> str:
        return f"Ev({self.model.name!r}, soc={self.soc:.3f})"

    @property
    def full(self) -> bool:
        return self.soc >= 1.0

    def demand_current_a(self) -> float:
        return self.model.demand_current_a(self.soc)

    def draw_current_a(self, offered_a: float) -> float:
        """Current per phase drawn under an offer: min(demand, offer), 0 below 6 A."""
        if offered_a < IEC61851_MIN_CURRENT_A:
            return 0.0
        return min(self.demand_current_a(), offered_a)

    def charge(
        self,
        current_a: float,
        phases: int,
        duration_s: float,
        voltage_v: float = NOMINAL_VOLTAGE_V,
    ) -> float:
        """Charge for ``duration_s`` at ``current_a`` per phase; returns the AC energy in Wh.

        The battery stores that energy less the charger's losses.
        """
        if current_a <= 0 or duration_s <= 0 or phases <= 0:
            return 0.0
        energy_wh = current_a * voltage_v * phases * duration_s / 3600.0
        stored_kwh = energy_wh * self.model.efficiency / 1000.0
        self.soc = min(1.0, self.soc + stored_kwh / self.model.battery_kwh)
        self.energy_wh += energy_wh
        return energy_wh


def random_ev(
    rng: random.Random,
    catalogue: Sequence[EvModel] = EV_CATALOGUE,
    soc_range: tuple[float, float] = (0.1, 0.6),
) -> Ev:
    """An EV drawn from ``catalogue`` with a uniformly random starting state of charge."""
    return Ev(rng.choice(list(catalogue)), rng.uniform(*soc_range))
