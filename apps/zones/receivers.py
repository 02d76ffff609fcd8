"""What the zones do when the meters and the site settings below them ask."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.dispatch import receiver
from django.utils.translation import gettext as _

from apps.meters.signals import meters_polled
from apps.siteconfig.models import ProductionMode
from apps.siteconfig.signals import site_settings_checked
from apps.zones.selectors import zones_without_production_meter
from apps.zones.services import external_inputs_poll


@receiver(meters_polled, dispatch_uid="zones-external-inputs-poll")
def poll_external_inputs(sender, **kwargs) -> None:
    """The external inputs are read on the meters' polling period, in the same slot."""
    external_inputs_poll()


@receiver(site_settings_checked, dispatch_uid="zones-local-production-meters")
def check_local_production(sender, *, instance, **kwargs) -> None:
    """Local production needs a production meter over every zone holding stations."""
    if instance.production_mode != ProductionMode.LOCAL:
        return
    lacking = zones_without_production_meter()
    if lacking:
        raise ValidationError(
            {
                "production_mode": _(
                    "Local production only needs a production meter on every zone "
                    "holding stations or on a zone above it; missing for %(zones)s."
                )
                % {"zones": ", ".join(zone.name for zone in lacking)}
            }
        )
