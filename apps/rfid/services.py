"""Card and authentication-group workflows.

Every write validates before saving (a wrong value changes nothing), runs in
one transaction, leaves a CONFIGURATION entry in the device log saying who
changed what, and announces the change once, after commit, through
:mod:`apps.rfid.signals` so the OCPP side can bring the stations'
configuration and local authorisation lists up to date.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from apps.devicelog.models import EventCategory
from apps.devicelog.services import device_log_write, fields_assign
from apps.rfid.models import AuthGroup, Card, OfflineStrategy, OnlineMode
from apps.rfid.signals import auth_groups_changed, cards_changed

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

logger = logging.getLogger(__name__)

# Keeps every IN (...) list well below SQLite's bound on query parameters.
CHUNK_SIZE = 500

CardMembership = Card.groups.through
T = TypeVar("T")


class _Unchanged:
    """The default of an optional value that ``None`` would clear (an expiry date)."""

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED: Any = _Unchanged()


def chunked(values: Iterable[T], size: int = CHUNK_SIZE) -> Iterator[list[T]]:
    """Yield ``values`` in lists of at most ``size`` items."""
    batch: list[T] = []
    for value in values:
        batch.append(value)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _cards_changed(
    *, card_ids: Iterable[int], id_tags: Iterable[str], group_ids: Iterable[int]
) -> None:
    """Announce a card change once the transaction commits.

    The single exit of every card write: the local authorisation list sync
    (differential ``SendLocalList`` to the stations of the affected groups)
    subscribes to :data:`apps.rfid.signals.cards_changed`, so nothing here
    needs to know about OCPP.
    """
    payload = {
        "card_ids": frozenset(card_ids),
        "id_tags": frozenset(id_tags),
        "group_ids": frozenset(group_ids),
    }
    transaction.on_commit(lambda: _send(cards_changed, Card, payload))


def _groups_changed(*, group_ids: Iterable[int], station_ids: Iterable[int]) -> None:
    """Announce, after commit, that groups or the stations' groups changed."""
    payload = {"group_ids": frozenset(group_ids), "station_ids": frozenset(station_ids)}
    transaction.on_commit(lambda: _send(auth_groups_changed, AuthGroup, payload))


def announce_groups_changed(*, group_ids: Iterable[int], station_ids: Iterable[int]) -> None:
    """For writers outside this module (site import): groups or stations changed."""
    _groups_changed(group_ids=group_ids, station_ids=station_ids)


def _send(signal, sender, payload: dict[str, Any]) -> None:
    # The change is committed: a failing receiver must not turn it into an error
    # for the person who made it, but it must not go unnoticed either.
    for receiver, result in signal.send_robust(sender=sender, **payload):
        if isinstance(result, Exception):
            logger.error("Receiver %r failed on %s", receiver, payload, exc_info=result)


def _log(*, event: str, message: str, user: AbstractBaseUser | None, data: dict) -> None:
    device_log_write(
        category=EventCategory.CONFIGURATION, event=event, message=message, user=user, data=data
    )


def _save_card(card: Card, **kwargs) -> None:
    """Save a validated card, reporting a duplicate created meanwhile as a field error."""
    try:
        with transaction.atomic():
            card.save(**kwargs)
    except IntegrityError:
        raise ValidationError(
            {"id_tag": _("A card with id tag %(tag)s already exists.") % {"tag": card.id_tag}}
        ) from None


def _group_names(groups: Iterable[AuthGroup]) -> list[str]:
    return sorted(group.name for group in groups)


# --- cards -------------------------------------------------------------------


@transaction.atomic
def card_create(
    *,
    id_tag: str,
    authorized: bool = True,
    vip: bool = False,
    comment: str = "",
    parent_id_tag: str = "",
    expires_at: datetime | None = None,
    groups: Iterable[AuthGroup] = (),
    user: AbstractBaseUser | None,
) -> Card:
    """Register a card; ``ValidationError`` (nothing saved) on a bad or duplicate id tag."""
    card = Card(
        id_tag=id_tag,
        authorized=authorized,
        vip=vip,
        comment=comment,
        parent_id_tag=parent_id_tag,
        expires_at=expires_at,
    )
    card.full_clean()
    _save_card(card)
    group_list = list(groups)
    card.groups.set(group_list)
    _log(
        event="card_created",
        message=_("RFID card %(tag)s created.") % {"tag": card.id_tag},
        user=user,
        data={
            "id_tag": card.id_tag,
            "authorized": card.authorized,
            "vip": card.vip,
            "comment": card.comment,
            "expires_at": card.expires_at.isoformat() if card.expires_at else None,
            "groups": _group_names(group_list),
        },
    )
    _cards_changed(card_ids=[card.pk], id_tags=[card.id_tag], group_ids=[g.pk for g in group_list])
    return card


@transaction.atomic
def card_update(
    *,
    card: Card,
    id_tag: str | None = None,
    authorized: bool | None = None,
    vip: bool | None = None,
    comment: str | None = None,
    parent_id_tag: str | None = None,
    expires_at: datetime | None = UNCHANGED,
    groups: Iterable[AuthGroup] | None = None,
    user: AbstractBaseUser | None,
) -> Card:
    """Change the given attributes of a card (``None`` leaves one as it is).

    ``expires_at`` is left as it is unless given; ``None`` then removes the expiry.

    The stored row is the reference, so only what really changes is logged
    and announced; a call that changes nothing writes nothing. ``card`` is
    refreshed from the database on return.
    """
    current = Card.objects.select_for_update().get(pk=card.pk)
    old_tag = current.id_tag
    requested = {
        "id_tag": id_tag,
        "authorized": authorized,
        "vip": vip,
        "comment": comment,
        "parent_id_tag": parent_id_tag,
    }
    requested = {f: v for f, v in requested.items() if v is not None}
    if expires_at is not UNCHANGED:
        requested["expires_at"] = expires_at
    changes = fields_assign(current, requested)

    old_groups = set(current.groups.all())
    new_groups = old_groups if groups is None else set(groups)
    if new_groups != old_groups:
        changes["groups"] = [_group_names(old_groups), _group_names(new_groups)]

    if not changes:
        card.refresh_from_db()
        return card

    field_changes = [f for f in changes if f != "groups"]
    if field_changes:
        current.full_clean()
        _save_card(current, update_fields=field_changes)
    card_tag = current.id_tag
    if "groups" in changes:
        current.groups.set(new_groups)

    labels = ", ".join(str(Card._meta.get_field(f).verbose_name) for f in changes)
    _log(
        event="card_updated",
        message=_("RFID card %(tag)s changed: %(fields)s.") % {"tag": card_tag, "fields": labels},
        user=user,
        data={"id_tag": card_tag, "changes": changes},
    )
    _cards_changed(
        card_ids=[current.pk],
        id_tags={old_tag, card_tag},
        group_ids={g.pk for g in old_groups | new_groups},
    )
    card.refresh_from_db()
    return card


@transaction.atomic
def card_delete(*, card: Card, user: AbstractBaseUser | None) -> None:
    """Delete one card; the stations of its groups must then forget it."""
    cards_bulk_delete(cards=[card], user=user)


@transaction.atomic
def cards_bulk_delete(
    *, cards: Iterable[Card] | QuerySet[Card], user: AbstractBaseUser | None
) -> int:
    """Delete several cards with one log entry and one notification; returns how many."""
    ids = _locked_card_ids(cards)
    if not ids:
        return 0
    tags: list[str] = []
    group_ids: set[int] = set()
    for chunk in chunked(ids):
        tags += Card.objects.filter(pk__in=chunk).values_list("id_tag", flat=True)
        group_ids.update(
            CardMembership.objects.filter(card_id__in=chunk).values_list("authgroup_id", flat=True)
        )
        Card.objects.filter(pk__in=chunk).delete()
    tags.sort()
    if len(tags) == 1:
        message = _("RFID card %(tag)s deleted.") % {"tag": tags[0]}
    else:
        message = _("%(count)d RFID cards deleted.") % {"count": len(tags)}
    _log(event="cards_deleted", message=message, user=user, data={"id_tags": tags})
    _cards_changed(card_ids=ids, id_tags=tags, group_ids=group_ids)
    return len(ids)


def _locked_card_ids(cards: Iterable[Card] | QuerySet[Card]) -> list[int]:
    """The ids of ``cards`` that still exist, locked against concurrent edits."""
    if isinstance(cards, QuerySet):
        wanted: Iterable[int] = cards.order_by().values_list("pk", flat=True)
    else:
        wanted = [card.pk for card in cards if card.pk is not None]
    ids: list[int] = []
    for chunk in chunked(wanted):
        ids += (
            Card.objects.select_for_update()
            .filter(pk__in=chunk)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
    return ids


@transaction.atomic
def cards_bulk_update(
    *,
    cards: Iterable[Card] | QuerySet[Card],
    authorized: bool | None = None,
    vip: bool | None = None,
    add_groups: Iterable[AuthGroup] = (),
    remove_groups: Iterable[AuthGroup] = (),
    user: AbstractBaseUser | None,
) -> int:
    """Authorise or block, set VIP on or off, add to or remove from groups, in one go.

    Only cards that really change are counted, logged (one entry for the
    whole operation) and announced; the count is returned. The values are
    plain flags and existing groups, so there is nothing per card to
    validate beyond asking for contradictory group moves.
    """
    to_add = {group.pk: group for group in add_groups}
    to_remove = {group.pk: group for group in remove_groups}
    both = to_add.keys() & to_remove.keys()
    if both:
        raise ValidationError(
            _("A group cannot be both added and removed: %(names)s.")
            % {"names": ", ".join(_group_names(to_add[pk] for pk in both))}
        )

    ids = _locked_card_ids(cards)
    changed: set[int] = set()
    left_groups: set[int] = set()
    for chunk in chunked(ids):
        selected = Card.objects.filter(pk__in=chunk)
        for field, value in (("authorized", authorized), ("vip", vip)):
            if value is None:
                continue
            differing = selected.exclude(**{field: value})
            changed.update(differing.values_list("pk", flat=True))
            differing.update(**{field: value})
        if to_add:
            present = set(
                CardMembership.objects.filter(
                    card_id__in=chunk, authgroup_id__in=to_add
                ).values_list("card_id", "authgroup_id")
            )
            rows = [
                CardMembership(card_id=card_id, authgroup_id=group_id)
                for card_id in chunk
                for group_id in to_add
                if (card_id, group_id) not in present
            ]
            CardMembership.objects.bulk_create(rows, ignore_conflicts=True)
            changed.update(row.card_id for row in rows)
        if to_remove:
            memberships = CardMembership.objects.filter(
                card_id__in=chunk, authgroup_id__in=to_remove
            )
            for card_id, group_id in memberships.values_list("card_id", "authgroup_id"):
                changed.add(card_id)
                left_groups.add(group_id)
            memberships.delete()

    if not changed:
        return 0

    tags: list[str] = []
    group_ids = set(left_groups)
    for chunk in chunked(sorted(changed)):
        tags += Card.objects.filter(pk__in=chunk).values_list("id_tag", flat=True)
        group_ids.update(
            CardMembership.objects.filter(card_id__in=chunk).values_list("authgroup_id", flat=True)
        )
    tags.sort()

    what = []
    if authorized is not None:
        what.append(_("authorised") if authorized else _("blocked"))
    if vip is not None:
        what.append(_("VIP on") if vip else _("VIP off"))
    if to_add:
        what.append(_("added to %(groups)s") % {"groups": ", ".join(_group_names(to_add.values()))})
    if to_remove:
        what.append(
            _("removed from %(groups)s") % {"groups": ", ".join(_group_names(to_remove.values()))}
        )
    message = ngettext(
        "%(count)d RFID card changed: %(what)s.",
        "%(count)d RFID cards changed: %(what)s.",
        len(changed),
    ) % {"count": len(changed), "what": "; ".join(what)}
    _log(
        event="cards_bulk_updated",
        message=message,
        user=user,
        data={
            "id_tags": tags,
            "authorized": authorized,
            "vip": vip,
            "added_to": _group_names(to_add.values()),
            "removed_from": _group_names(to_remove.values()),
        },
    )
    _cards_changed(card_ids=changed, id_tags=tags, group_ids=group_ids)
    return len(changed)


# --- authentication groups ---------------------------------------------------


@transaction.atomic
def auth_group_create(
    *,
    name: str,
    online_mode: OnlineMode | str = OnlineMode.KNOWN_CARDS,
    offline_strategy: OfflineStrategy | str = OfflineStrategy.USE_CACHE,
    plug_and_charge_id_tag: str = "",
    user: AbstractBaseUser | None,
) -> AuthGroup:
    """Create a group (no stations, no cards yet); ``ValidationError`` on bad values."""
    group = AuthGroup(
        name=name,
        online_mode=online_mode,
        offline_strategy=offline_strategy,
        plug_and_charge_id_tag=plug_and_charge_id_tag,
    )
    group.full_clean()
    group.save()
    _log(
        event="auth_group_created",
        message=_("Authentication group %(name)s created.") % {"name": group.name},
        user=user,
        data={
            "name": group.name,
            "online_mode": group.online_mode,
            "offline_strategy": group.offline_strategy,
        },
    )
    _groups_changed(group_ids=[group.pk], station_ids=[])
    return group


@transaction.atomic
def auth_group_update(
    *,
    group: AuthGroup,
    name: str | None = None,
    online_mode: OnlineMode | str | None = None,
    offline_strategy: OfflineStrategy | str | None = None,
    plug_and_charge_id_tag: str | None = None,
    user: AbstractBaseUser | None,
) -> AuthGroup:
    """Change a group's name or modes (``None`` leaves one as it is).

    A change of mode must reach the group's stations (their OCPP
    configuration), hence the notification with their ids.
    """
    current = AuthGroup.objects.select_for_update().get(pk=group.pk)
    requested = {
        "name": name,
        "online_mode": online_mode,
        "offline_strategy": offline_strategy,
        "plug_and_charge_id_tag": plug_and_charge_id_tag,
    }
    changes = fields_assign(current, {f: v for f, v in requested.items() if v is not None})
    if changes:
        current.full_clean()
        current.save(update_fields=list(changes))
        labels = ", ".join(str(AuthGroup._meta.get_field(f).verbose_name) for f in changes)
        _log(
            event="auth_group_updated",
            message=_("Authentication group %(name)s changed: %(fields)s.")
            % {"name": current.name, "fields": labels},
            user=user,
            data={"name": current.name, "changes": changes},
        )
        _groups_changed(
            group_ids=[current.pk],
            station_ids=current.stations.values_list("pk", flat=True),
        )
    group.refresh_from_db()
    return group


@transaction.atomic
def auth_group_delete(*, group: AuthGroup, user: AbstractBaseUser | None) -> None:
    """Delete a group that no station uses; its cards stay, outside this group.

    Refused with ``ValidationError`` while stations use it: a station must
    always know how to authorise, so they move to another group first.
    """
    current = AuthGroup.objects.select_for_update().get(pk=group.pk)
    identities = list(current.stations.order_by("identity").values_list("identity", flat=True))
    if identities:
        shown = ", ".join(identities[:5]) + ("…" if len(identities) > 5 else "")
        raise ValidationError(
            ngettext(
                "Group %(name)s is used by %(count)d station (%(stations)s): "
                "move it to another group first.",
                "Group %(name)s is used by %(count)d stations (%(stations)s): "
                "move them to another group first.",
                len(identities),
            )
            % {"name": current.name, "count": len(identities), "stations": shown}
        )
    pk, name = current.pk, current.name
    current.delete()
    _log(
        event="auth_group_deleted",
        message=_("Authentication group %(name)s deleted.") % {"name": name},
        user=user,
        data={"name": name},
    )
    _groups_changed(group_ids=[pk], station_ids=[])
