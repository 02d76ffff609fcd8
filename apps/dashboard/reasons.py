"""Setpoint reasons in words, as operators read them ("limited by Main switchboard L2")."""

from __future__ import annotations

from collections.abc import Mapping

from django.utils.translation import gettext as _

from apps.energy.allocator import Reason
from apps.energy.selectors import ConnectorSetpoint


def reason_words(setpoint: ConnectorSetpoint | None, zone_names: Mapping[int, str]) -> str:
    """Why a session has its setpoint, naming the zone and phase that limit it."""
    if setpoint is None:
        return _("waiting for the load manager")
    zone = zone_names.get(setpoint.limiting_zone_id or -1, "")
    where = zone
    if zone and setpoint.limiting_phase is not None:
        where = f"{zone} L{int(setpoint.limiting_phase)}"
    charging = setpoint.setpoint_a > 0
    reason = setpoint.reason
    if reason == Reason.ZONE_LIMIT:
        return _("limited by %(where)s") % {"where": where} if where else _("limited by its zone")
    if reason == Reason.DEGRADED:
        return (
            _("degraded: meter lost (%(zone)s)") % {"zone": zone}
            if zone
            else _("degraded: meter lost")
        )
    if reason == Reason.CONNECTOR_MAX:
        return (
            _("at the connector's maximum")
            if charging
            else _("suspended: the connector's maximum is below the floor")
        )
    if reason == Reason.EV_DEMAND:
        return _("limited by the vehicle's demand")
    if reason == Reason.IMBALANCE_LIMIT:
        return (
            _("limited by the phase imbalance of %(zone)s") % {"zone": zone}
            if zone
            else _("limited by the phase imbalance limit")
        )
    if reason == Reason.FLOOR:
        return (
            _("at its floor: %(where)s is full") % {"where": where} if where else _("at its floor")
        )
    if reason == Reason.SHED_PRIORITY:
        return _("shed: priority")
    if reason == Reason.NO_CAPACITY:
        return (
            _("suspended: no capacity on %(where)s") % {"where": where}
            if where
            else _("suspended: no capacity")
        )
    if reason == Reason.IDLE_SUSPENDED:
        return _("suspended: idle vehicle")
    if reason == Reason.INVALID_INPUT:
        return _("suspended: the station's zone is unknown")
    if reason == Reason.HELD:
        return _("held: the station did not apply the last profile")
    return str(reason)
