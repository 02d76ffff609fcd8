"""Reads of cards and authentication groups shared by the API and the pages."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Q, QuerySet

from apps.rfid.models import AuthGroup, Card


def cards_listed(*, search: str | None = None, authorized: bool | None = None) -> QuerySet[Card]:
    """Cards by id tag, their groups prefetched; ``search`` in the id tag or the comment."""
    cards = Card.objects.prefetch_related("groups").order_by("id_tag", "pk")
    if search:
        cards = cards.filter(Q(id_tag__icontains=search) | Q(comment__icontains=search))
    if authorized is not None:
        cards = cards.filter(authorized=authorized)
    return cards


def card_by_id_tag(id_tag: str) -> Card | None:
    """OCPP compares id tags case-insensitively: so does this."""
    return Card.objects.prefetch_related("groups").filter(id_tag__iexact=id_tag).first()


def auth_groups_by_name(names: Iterable[str]) -> tuple[list[AuthGroup], list[str]]:
    """The groups of these names, and the names that name no group."""
    wanted = list(dict.fromkeys(names))
    found = {group.name: group for group in AuthGroup.objects.filter(name__in=wanted)}
    return [found[n] for n in wanted if n in found], [n for n in wanted if n not in found]
