"""The one decision on whether an id tag may charge at a station.

Authorize, StartTransaction (which re-checks a tag the station may have
accepted offline) and StopTransaction all ask here, so the rules live in one
place. They follow the online mode of the station's authentication group:

- *known cards only*: an unknown tag is ``Invalid``, a blocked (not
  authorised) card ``Blocked``, a card outside the station's group ``Invalid``;
- *authorize all cards*: any tag is accepted except a blocked card;
- *reader disabled*: the station starts on plug-in with the group's tag (or
  any tag it sends); a blocked card is still refused.

A station without a group accepts known, authorised cards. A card past its
expiry date is ``Expired`` (after ``Blocked``, before the group check); before
that date every answer about it carries ``expiryDate``, so the station's cache
does not keep accepting it offline.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from django.utils import timezone
from ocpp.charge_point import remove_nones, snake_to_camel_case
from ocpp.v16.datatypes import IdTagInfo
from ocpp.v16.enums import AuthorizationStatus

from apps.central_system.protocol import format_datetime
from apps.rfid.models import Card, OnlineMode
from apps.stations.models import Station


@dataclass(frozen=True, slots=True)
class Authorization:
    """The decision on an id tag: the OCPP ``IdTagInfo`` for the station, and the card.

    The card is what the decision was made on; it is kept for the transaction
    and never sent to the station.
    """

    id_tag_info: IdTagInfo
    card: Card | None = None

    @property
    def status(self) -> AuthorizationStatus:
        return AuthorizationStatus(self.id_tag_info.status)

    @property
    def accepted(self) -> bool:
        return self.status == AuthorizationStatus.accepted

    def as_ocpp(self) -> dict[str, Any]:
        """The ``idTagInfo`` payload: camelCase keys, absent fields left out, plain strings."""
        fields = snake_to_camel_case(remove_nones(asdict(self.id_tag_info)))
        return {
            key: format_datetime(value) if isinstance(value, datetime) else str(value)
            for key, value in fields.items()
        }


def authorize_id_tag(station: Station | None, id_tag: str, *, touch: bool = True) -> Authorization:
    """Decide on ``id_tag`` presented at ``station`` and note when the card was seen.

    OCPP compares id tags case-insensitively. ``touch`` updates the card's
    last-seen time (Authorize and StartTransaction do, StopTransaction not).
    """
    now = timezone.now()
    card = Card.objects.filter(id_tag__iexact=id_tag).first() if id_tag else None
    group = station.auth_group if station is not None and station.auth_group_id else None
    open_mode = group is not None and group.online_mode in (
        OnlineMode.ALL_CARDS,
        OnlineMode.READER_DISABLED,
    )
    if card is None:
        if open_mode and id_tag:
            return Authorization(IdTagInfo(AuthorizationStatus.accepted))
        return Authorization(IdTagInfo(AuthorizationStatus.invalid))
    if touch:
        Card.objects.filter(pk=card.pk).update(last_seen_at=now)
    if not card.authorized:
        status = AuthorizationStatus.blocked
    elif card.is_expired(now):
        status = AuthorizationStatus.expired
    elif group is not None and not open_mode and not card.groups.filter(pk=group.pk).exists():
        status = AuthorizationStatus.invalid
    else:
        status = AuthorizationStatus.accepted
    return Authorization(
        IdTagInfo(
            status,
            parent_id_tag=card.parent_id_tag or None,
            expiry_date=card.expires_at,
        ),
        card=card,
    )
