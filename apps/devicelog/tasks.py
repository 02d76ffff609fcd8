from celery import shared_task
from django.conf import settings

from apps.devicelog.services import device_log_trim


@shared_task
def device_log_trim_task() -> int:
    return device_log_trim(max_entries=settings.DEVICE_LOG_MAX_ENTRIES)
