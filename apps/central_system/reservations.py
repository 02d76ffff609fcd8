"""Reservations (OCPP 1.6 ReserveNow / CancelReservation): held connectors for one driver.

The reservation is recorded first (its id is the ``reservationId`` the
station gets), then sent; the station's answer decides whether it is active.
It ends when the station starts a transaction naming it (see the
StartTransaction handler), when it is cancelled, or at its expiry (the
periodic ``reservations_expire_task``; the station lets it lapse by itself).
While active, the connector reports ``Reserved`` and has no session: the load
manager budgets it as any idle connector, at the fallback a car arriving
would charge at.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from ocpp.v16.enums import CancelReservationStatus

from apps.central_system import command_loop, commands
from apps.stations import services as stations
from apps.stations.models import OPEN_RESERVATION_STATUSES, Reservation, ReservationStatus, Station

COMMAND_TIMEOUT_S = 30.0

Send = Callable[[commands.Command], dict[str, Any]]


def _sender(identity: str, send: Send | None) -> Send:
    if send is not None:
        return send
    return lambda command: command_loop.run(
        commands.send(identity, command, timeout_s=COMMAND_TIMEOUT_S)
    )


def reservation_make(
    *,
    station: Station,
    connector_id: int,
    id_tag: str,
    expires_at: datetime,
    parent_id_tag: str = "",
    user=None,
    send: Send | None = None,
) -> Reservation:
    """Reserve a connector (0: any) of ``station`` for ``id_tag`` until ``expires_at``.

    Returns the reservation: *active* when the station accepted it,
    *refused* otherwise (its answer, or why it gave none, in
    ``station_answer``). ``ValidationError`` and nothing sent on bad input.
    """
    reservation = stations.reservation_create(
        station=station,
        connector_id=connector_id,
        id_tag=id_tag,
        expires_at=expires_at,
        parent_id_tag=parent_id_tag,
        user=user,
    )
    command = commands.reserve_now(
        connector_id,
        expires_at,
        id_tag,
        reservation.pk,
        parent_id_tag=parent_id_tag or None,
    )
    try:
        answer = str(_sender(station.identity, send)(command).get("status", "Unknown"))
    except commands.CommandError as exc:
        answer = f"{type(exc).__name__}: {exc}"
    return stations.reservation_answered(reservation=reservation, answer=answer)


def reservation_cancel(
    *, reservation: Reservation, user=None, send: Send | None = None
) -> Reservation:
    """Cancel an open reservation at its station.

    ``Accepted`` ends it; so does ``Rejected`` (the station holds no such
    reservation any more, e.g. it expired there). A station that cannot be
    reached keeps it open: ``ValidationError``, to try again.
    """
    if reservation.status not in OPEN_RESERVATION_STATUSES:
        raise ValidationError(_("This reservation is over already."))
    identity = reservation.station.identity
    try:
        answer = _sender(identity, send)(commands.cancel_reservation(reservation.pk))
    except commands.CommandError as exc:
        raise ValidationError(
            _("Station %(identity)s could not be asked: %(error)s")
            % {"identity": identity, "error": exc}
        ) from None
    status = str(answer.get("status", "Unknown"))
    stations.reservation_end(
        reservation=reservation,
        status=ReservationStatus.CANCELLED,
        user=user,
        answer=status,
        held_by_station=status == CancelReservationStatus.accepted,
    )
    return reservation


def reservations_expire() -> int:
    """Close the reservations past their expiry; return how many."""
    return stations.reservations_expire()
