"""Pure load-management allocator: decides every connector's current setpoint (SPEC §3).

No framework, no I/O, no clock: a :class:`SiteSnapshot` goes in, an
:class:`Allocation` comes out, the same for the same input. Each control tick::

    allocation = allocate(SiteSnapshot(
        now_s=now.timestamp(),          # the only notion of time
        zones=zones,                    # Zone: limits, readings (None = meter lost), reductions
        sessions=sessions,              # Session: connector, VIP, energy, measurements, history
        reserves=reserves,              # Reserve: disconnected stations (reserve_for_connector)
        settings=settings,              # SiteSettings: floor mode, priority, production mode…
        previous_ranking=last.ranking,  # fed back so priorities are kept for 15 minutes
        capacity_changed=config_changed,
    ))

then send ``item.setpoint_a`` (``setpoint_w`` for DC) of every ``item.changed``
session, and feed back, per session, ``last_setpoint_a``/``last_setpoint_at_s``
(what was sent and when), ``last_reason`` (``item.reason``) and ``idle_since_s``.
:func:`offline_currents` gives each connector's fallback current (SPEC §3.8).

All limits are per phase and computed in whole deciamps (see ``units``); DC
chargers get the same floors as AC, per phase of their supply.
"""

from .capacity import (
    ZoneCapacity,
    effective_reduction_percent,
    zone_capacity,
    zone_limit_a,
)
from .engine import allocate, connector_max_current_a
from .model import (
    Allocation,
    Connector,
    CurrentType,
    FloorMode,
    Phase,
    PhaseAmps,
    PhaseWiring,
    Priority,
    ProductionMode,
    Ranking,
    Reason,
    Reduction,
    ReductionSource,
    Reserve,
    Session,
    SessionAllocation,
    SiteSettings,
    SiteSnapshot,
    Zone,
    ZoneAllocation,
    connector_to_building_phases,
    detect_ev_phases,
    loaded_phases,
    reserve_for_connector,
)
from .offline import OfflineCurrent, offline_currents, zone_safe_budget_a
from .ranking import priority_order, rerank_due
from .units import current_to_power_w, power_to_current_a

__all__ = [
    "Allocation",
    "Connector",
    "CurrentType",
    "FloorMode",
    "OfflineCurrent",
    "Phase",
    "PhaseAmps",
    "PhaseWiring",
    "Priority",
    "ProductionMode",
    "Ranking",
    "Reason",
    "Reduction",
    "ReductionSource",
    "Reserve",
    "Session",
    "SessionAllocation",
    "SiteSettings",
    "SiteSnapshot",
    "Zone",
    "ZoneAllocation",
    "ZoneCapacity",
    "allocate",
    "connector_max_current_a",
    "connector_to_building_phases",
    "current_to_power_w",
    "detect_ev_phases",
    "effective_reduction_percent",
    "loaded_phases",
    "offline_currents",
    "power_to_current_a",
    "priority_order",
    "rerank_due",
    "reserve_for_connector",
    "zone_capacity",
    "zone_limit_a",
    "zone_safe_budget_a",
]
