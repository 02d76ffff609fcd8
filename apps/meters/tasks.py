from celery import shared_task
from django.conf import settings

from apps.meters import services
from apps.meters.models import Meter
from apps.meters.signals import meters_polled
from apps.siteconfig.models import SiteSettings
from evce_site.hotstate import key, redis_client


@shared_task(ignore_result=True)
def poll_meters_task() -> None:
    """Poll meters and inputs when the site's polling period has elapsed.

    Beat ticks faster than the shortest allowed period; a Redis slot with the
    period as its lifetime decides which tick polls, so the period can change
    at run time and two workers never poll the same period twice.
    """
    period_ms = SiteSettings.load().meter_poll_interval_ms
    slack_ms = min(settings.METER_TICK_MS // 2, period_ms // 4)
    client = redis_client()
    if not client.set(key("meters", "poll-slot"), 1, nx=True, px=period_ms - slack_ms):
        return
    # A poll slowed by timeouts must not overlap the next one.
    running = client.lock(key("meters", "poll-running"), timeout=30, blocking=False)
    if not running.acquire():
        return
    try:
        services.meters_poll()
        meters_polled.send(sender=Meter)
    finally:
        running.release()
