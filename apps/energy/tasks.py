from celery import shared_task

from apps.energy import services


@shared_task(ignore_result=True)
def rebalance_site_task() -> int:
    return services.rebalance_run()


@shared_task(ignore_result=True)
def rebalance_tick_task() -> None:
    """Periodic re-allocation (at least every 30 s): renews leases, re-ranks, expires limits."""
    services.rebalance_request(reason="tick")
