"""Reads of cards and authentication groups shared by the API, the pages and the admin."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet

from apps.rfid.models import AuthGroup, Card


class CardState:
    AUTHORIZED = "authorized"
    BLOCKED = "blocked"


def cards_search(*, text: str = "", group_id: int | None = None, state: str = "") -> QuerySet[Card]:
    """Cards whose id tag or comment contains ``text``, optionally of a group or a state."""
    cards = Card.objects.all()
    if text:
        cards = cards.filter(Q(id_tag__icontains=text) | Q(comment__icontains=text))
    if group_id is not None:
        cards = cards.filter(groups__id=group_id)
    if state == CardState.AUTHORIZED:
        cards = cards.filter(authorized=True)
    elif state == CardState.BLOCKED:
        cards = cards.filter(authorized=False)
    return cards.order_by("id_tag", "pk").prefetch_related("groups")


@dataclass(frozen=True, slots=True)
class GroupSummary:
    """A group as the groups page lists it: modes, its stations (identities) and card count."""

    id: int
    name: str
    online_mode: str
    online_mode_label: str
    offline_strategy: str
    offline_strategy_label: str
    plug_and_charge_id_tag: str
    station_identities: list[str]
    card_count: int


def _summary(group: AuthGroup, stations: list[str]) -> GroupSummary:
    return GroupSummary(
        id=group.pk,
        name=group.name,
        online_mode=group.online_mode,
        online_mode_label=str(group.get_online_mode_display()),
        offline_strategy=group.offline_strategy,
        offline_strategy_label=str(group.get_offline_strategy_display()),
        plug_and_charge_id_tag=group.plug_and_charge_id_tag,
        station_identities=stations,
        card_count=group.card_count,
    )


def auth_groups_overview() -> list[GroupSummary]:
    """Every group by name, with its stations and how many cards it lists (three queries)."""
    groups = list(AuthGroup.objects.annotate(card_count=Count("cards", distinct=True)))
    stations: dict[int, list[str]] = {}
    for group_id, identity in (
        AuthGroup.objects.filter(stations__isnull=False)
        .order_by("stations__identity")
        .values_list("id", "stations__identity")
    ):
        stations.setdefault(group_id, []).append(identity)
    return [_summary(group, stations.get(group.pk, [])) for group in groups]


def auth_group_summary(group_id: int) -> GroupSummary | None:
    group = AuthGroup.objects.annotate(card_count=Count("cards", distinct=True)).filter(pk=group_id)
    found = group.first()
    if found is None:
        return None
    identities = list(found.stations.order_by("identity").values_list("identity", flat=True))
    return _summary(found, identities)


def cards_listed(*, search: str | None = None, authorized: bool | None = None) -> QuerySet[Card]:
    """Cards by id tag, their groups prefetched; ``search`` in the id tag or the comment."""
    state = ""
    if authorized is not None:
        state = CardState.AUTHORIZED if authorized else CardState.BLOCKED
    return cards_search(text=search or "", state=state)


def card_by_id_tag(id_tag: str) -> Card | None:
    """OCPP compares id tags case-insensitively: so does this."""
    return Card.objects.prefetch_related("groups").filter(id_tag__iexact=id_tag).first()


def auth_groups_by_name(names: Iterable[str]) -> tuple[list[AuthGroup], list[str]]:
    """The groups of these names, and the names that name no group."""
    wanted = list(dict.fromkeys(names))
    found = {group.name: group for group in AuthGroup.objects.filter(name__in=wanted)}
    return [found[n] for n in wanted if n in found], [n for n in wanted if n not in found]
