"""The site file's part in the device report: the configuration, with no secret."""

from __future__ import annotations

from django.dispatch import receiver

from apps.maintenance.signals import device_report_collecting
from apps.sitefile.export import site_export


@receiver(device_report_collecting, dispatch_uid="sitefile-device-report")
def configuration_for_report(sender, **kwargs) -> dict[str, str]:
    return {"configuration.yaml": site_export()}
