"""Keeps a station with undelivered CPO messages from disappearing with them."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db.models.signals import pre_delete
from django.dispatch import receiver
from django.utils.translation import gettext as _

from apps.stations.models import Station
from apps.supervision.models import OutboxMessage, OutboxState


@receiver(pre_delete, sender=Station, dispatch_uid="supervision-outbox-keeps-station")
def refuse_deleting_station_with_backlog(sender, instance: Station, **kwargs) -> None:
    """A StopTransaction is never dropped silently: deleting the station is refused instead.

    Raised inside the station service's transaction, so the deletion is rolled
    back and the person deleting sees why.
    """
    waiting = (
        OutboxMessage.objects.filter(station=instance).exclude(state=OutboxState.DELIVERED).count()
    )
    if waiting:
        raise ValidationError(
            _(
                "Station %(identity)s has %(count)d message(s) not yet delivered to its CPO: "
                "deliver or retry them first."
            )
            % {"identity": instance.identity, "count": waiting}
        )
