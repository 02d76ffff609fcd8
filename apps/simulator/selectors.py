"""Reads of evce's own configuration for ``simulate --from-site``."""

from __future__ import annotations

from collections.abc import Mapping

from apps.energy.allocator import CurrentType, PhaseWiring
from apps.rfid.models import Card, OnlineMode
from apps.simulator.engine import ConnectorSpec, StationSpec
from apps.simulator.engine.ev import NOMINAL_VOLTAGE_V
from apps.stations.models import Station, StationState
from apps.zones.models import Zone


def installed_station_specs(
    *, password: str | None = None, configuration: Mapping[str, str] | None = None
) -> list[StationSpec]:
    """The installed stations with their connectors' wiring and maxima.

    Each station's drivers use the authorised cards of its authentication
    group (its plug-and-charge tag when the reader is disabled), so demo
    sessions are accepted. A DC connector is simulated as a three-phase AC
    one with the same power. Stations without connectors are left out.
    """
    stations = (
        Station.objects.filter(state=StationState.INSTALLED)
        .select_related("auth_group")
        .prefetch_related("connectors", "auth_group__cards")
        .order_by("identity")
    )
    specs = []
    for station in stations:
        connectors = tuple(
            ConnectorSpec(
                connector.connector_id,
                PhaseWiring(connector.phase_wiring),
                _max_current_a(
                    connector.current_type, connector.max_current_a, connector.max_power_w
                ),
            )
            for connector in station.connectors.all()
        )
        if not connectors:
            continue
        specs.append(
            StationSpec(
                identity=station.identity,
                connectors=connectors,
                password=password,
                configuration=dict(configuration or {}),
                id_tags=_group_id_tags(station),
            )
        )
    return specs


def _max_current_a(current_type: str, max_current_a: object, max_power_w: int | None) -> float:
    if current_type == CurrentType.DC or max_current_a is None:
        return (max_power_w or 0) / (NOMINAL_VOLTAGE_V * 3)
    return float(max_current_a)  # type: ignore[arg-type]


def _group_id_tags(station: Station) -> tuple[str, ...]:
    group = station.auth_group
    if group is None:
        return ()
    if group.online_mode == OnlineMode.READER_DISABLED and group.plug_and_charge_id_tag:
        return (group.plug_and_charge_id_tag,)
    return tuple(sorted(card.id_tag for card in group.cards.all() if card.authorized))


def authorized_id_tags() -> list[str]:
    """Every card allowed to charge."""
    return list(
        Card.objects.filter(authorized=True).order_by("id_tag").values_list("id_tag", flat=True)
    )


def metered_station_identities() -> dict[int, list[str]]:
    """For each meter that measures a zone, the installed stations it sees.

    A zone meter measures everything below its zone (SPEC §3.1), so a
    simulated meter adds ``fleet.phase_currents_a(identities)`` to its
    building load.
    """
    zones = list(Zone.objects.values_list("id", "parent_id", "meter_id"))
    parent_of = {zone_id: parent_id for zone_id, parent_id, _ in zones}
    meter_of = {zone_id: meter_id for zone_id, _, meter_id in zones if meter_id is not None}
    result: dict[int, list[str]] = {meter_id: [] for meter_id in meter_of.values()}
    stations = Station.objects.filter(state=StationState.INSTALLED, zone__isnull=False)
    for identity, zone_id in stations.order_by("identity").values_list("identity", "zone_id"):
        while zone_id is not None:
            if zone_id in meter_of:
                result[meter_of[zone_id]].append(identity)
            zone_id = parent_of.get(zone_id)
    return result
