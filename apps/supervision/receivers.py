"""What supervision checks when the stations and the site settings below it change."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db.models.signals import pre_delete
from django.dispatch import receiver
from django.utils.translation import gettext as _

from apps.siteconfig.models import SupervisionMode
from apps.siteconfig.signals import site_settings_checked
from apps.stations.models import Station
from apps.supervision.models import OutboxMessage, OutboxState, Supervision


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


@receiver(site_settings_checked, dispatch_uid="supervision-unique-mode")
def check_unique_mode(sender, *, instance, **kwargs) -> None:
    """The ``unique`` mode relays every station to one supervision: there must be exactly one."""
    if instance.supervision_mode != SupervisionMode.UNIQUE:
        return
    count = Supervision.objects.count()
    if count != 1:
        raise ValidationError(
            {
                "supervision_mode": _(
                    "One CPO for all stations needs exactly one supervision; there are %(count)d."
                )
                % {"count": count}
            }
        )
