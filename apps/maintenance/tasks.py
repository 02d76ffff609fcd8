from celery import shared_task

from apps.maintenance import services


@shared_task
def purge_expired_records_task() -> dict[str, int]:
    return services.purge_expired_records()
