"""The one decision on whether an id tag may charge at a station.

Authorize, StartTransaction (which re-checks a tag the station may have
accepted offline) and StopTransaction all ask here, so the rules live in one
place. They follow the online mode of the station's authentication group:

- *known cards only*: an unknown tag is ``Invalid``, a blocked (not
  authorised) card ``Blocked``, a card outside the station's group ``Invalid``;
- *authorize all cards*: any tag is accepted except a blocked card;
- *reader disabled*: the station starts on plug-in with the group's tag (or
  any tag it sends); a blocked card is still refused.

A station without a group accepts known, authorised cards.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from django.utils import timezone

from apps.central_system.protocol import format_datetime
from apps.rfid.models import Card, OnlineMode
from apps.stations.models import Station


class AuthorizationStatus(StrEnum):
    ACCEPTED = "Accepted"
    BLOCKED = "Blocked"
    EXPIRED = "Expired"
    INVALID = "Invalid"
    CONCURRENT_TX = "ConcurrentTx"


@dataclass(frozen=True, slots=True)
class IdTagInfo:
    """OCPP ``IdTagInfo``, plus the card it was decided on (not sent to the station)."""

    status: AuthorizationStatus
    parent_id_tag: str = ""
    expiry_date: datetime | None = None
    card: Card | None = None

    @property
    def accepted(self) -> bool:
        return self.status == AuthorizationStatus.ACCEPTED

    def as_ocpp(self) -> dict[str, Any]:
        info: dict[str, Any] = {"status": str(self.status)}
        if self.parent_id_tag:
            info["parentIdTag"] = self.parent_id_tag
        if self.expiry_date is not None:
            info["expiryDate"] = format_datetime(self.expiry_date)
        return info


def authorize_id_tag(station: Station | None, id_tag: str, *, touch: bool = True) -> IdTagInfo:
    """Decide on ``id_tag`` presented at ``station`` and note when the card was seen.

    OCPP compares id tags case-insensitively. ``touch`` updates the card's
    last-seen time (Authorize and StartTransaction do, StopTransaction not).
    """
    card = Card.objects.filter(id_tag__iexact=id_tag).first() if id_tag else None
    group = station.auth_group if station is not None and station.auth_group_id else None
    open_mode = group is not None and group.online_mode in (
        OnlineMode.ALL_CARDS,
        OnlineMode.READER_DISABLED,
    )
    if card is None:
        if open_mode and id_tag:
            return IdTagInfo(AuthorizationStatus.ACCEPTED)
        return IdTagInfo(AuthorizationStatus.INVALID)
    if touch:
        Card.objects.filter(pk=card.pk).update(last_seen_at=timezone.now())
    if not card.authorized:
        status = AuthorizationStatus.BLOCKED
    elif group is not None and not open_mode and not card.groups.filter(pk=group.pk).exists():
        status = AuthorizationStatus.INVALID
    else:
        status = AuthorizationStatus.ACCEPTED
    return IdTagInfo(status, parent_id_tag=card.parent_id_tag, card=card)
