"""``/metrics``: evce's figures in the Prometheus text format (SPEC §9).

Built per scrape from what the dashboard reads too — the control loop's hot
state, the meters' hot state, a handful of aggregate queries — so a scrape
costs the same with 10 stations or 1000 (nothing is read per station).
Open to an API token, or without one to the addresses of
``EVCE_METRICS_ALLOWED_IPS``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from django.conf import settings
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from redis.exceptions import RedisError
from rest_framework import exceptions

from apps.api.authentication import TokenAuthentication
from apps.api.permissions import READERS
from apps.central_system.hotstate import message_counts
from apps.energy.selectors import zone_statuses
from apps.energy.state import run_stats
from apps.meters.selectors import meter_states, meters_listed
from apps.stations.models import Transaction
from apps.stations.selectors import station_counts

PHASES = ("L1", "L2", "L3")
SESSION_STATES = ("charging", "suspendedev", "suspendedevse", "finishing")


class EvceCollector:
    """Collects every figure at scrape time (a custom collector: nothing kept in between)."""

    def collect(self) -> Iterator[Metric]:
        yield from self._zones()
        yield from self._sessions_and_stations()
        yield from self._meters()
        yield from self._ocpp()
        yield from self._control_loop()

    def _zones(self) -> Iterator[Metric]:
        labels = ["zone_id", "zone", "phase"]
        available = GaugeMetricFamily(
            "evce_zone_available_current_amperes",
            "Current available for charging in the zone, reductions included.",
            labels=labels,
        )
        allocated = GaugeMetricFamily(
            "evce_zone_allocated_current_amperes",
            "Sum of the setpoints of the zone.",
            labels=labels,
        )
        measured = GaugeMetricFamily(
            "evce_zone_measured_current_amperes",
            "Current the zone meter measures (dynamic zones with a usable reading).",
            labels=labels,
        )
        degraded = GaugeMetricFamily(
            "evce_zone_degraded", "1 while the zone meter is lost.", labels=["zone_id", "zone"]
        )
        for status in zone_statuses():
            zone_id, name = str(status.zone.pk), status.zone.name
            for n, phase in enumerate(PHASES):
                available.add_metric([zone_id, name, phase], status.available_current_a[n])
                allocated.add_metric([zone_id, name, phase], status.allocated_current_a[n])
                if status.meter_current_a is not None:
                    measured.add_metric([zone_id, name, phase], status.meter_current_a[n])
            degraded.add_metric([zone_id, name], 1.0 if status.degraded else 0.0)
        yield from (available, allocated, measured, degraded)

    def _sessions_and_stations(self) -> Iterator[Metric]:
        counts = dict(
            Transaction.objects.filter(stopped_at__isnull=True)
            .values("status")
            .annotate(n=Count("pk"))
            .values_list("status", "n")
        )
        by_state = dict.fromkeys(SESSION_STATES, 0)
        for status, n in counts.items():
            by_state[status.lower()] = by_state.get(status.lower(), 0) + n
        sessions = GaugeMetricFamily(
            "evce_sessions", "Running charging sessions by state.", labels=["state"]
        )
        for state, n in by_state.items():
            sessions.add_metric([state], n)
        yield sessions
        stations = station_counts()
        yield GaugeMetricFamily(
            "evce_stations_connected", "Installed stations online.", value=stations.online
        )
        yield GaugeMetricFamily(
            "evce_stations_installed", "Installed stations.", value=stations.total
        )
        yield GaugeMetricFamily(
            "evce_stations_faulted", "Online stations reporting a fault.", value=stations.faulted
        )

    def _meters(self) -> Iterator[Metric]:
        meters = list(meters_listed())
        states = meter_states([meter.pk for meter in meters])
        now = timezone.now()
        up = GaugeMetricFamily(
            "evce_meter_up",
            "1 while the control loop may count on the meter's reading, 0 when lost.",
            labels=["meter_id", "meter"],
        )
        age = GaugeMetricFamily(
            "evce_meter_poll_age_seconds",
            "Age of the meter's last good reading.",
            labels=["meter_id", "meter"],
        )
        failures = GaugeMetricFamily(
            "evce_meter_failed_polls",
            "Consecutive failed polls of the meter.",
            labels=["meter_id", "meter"],
        )
        for meter in meters:
            state, labels = states[meter.pk], [str(meter.pk), meter.name]
            up.add_metric(labels, 1.0 if meter.enabled and state.is_usable(now) else 0.0)
            failures.add_metric(labels, state.failures)
            if (seconds := state.age_s(now)) is not None:
                age.add_metric(labels, seconds)
        yield from (up, age, failures)

    def _ocpp(self) -> Iterator[Metric]:
        messages = CounterMetricFamily(
            "evce_ocpp_messages",
            "OCPP frames exchanged with stations, by direction (in: from stations) and action.",
            labels=["direction", "action"],
        )
        for (direction, action), frames in sorted(message_counts().items()):
            messages.add_metric([direction, action], frames)
        yield messages

    def _control_loop(self) -> Iterator[Metric]:
        stats = run_stats()
        yield CounterMetricFamily(
            "evce_control_loop_runs", "Runs of the control loop.", value=stats.get("count", 0)
        )
        yield CounterMetricFamily(
            "evce_control_loop_duration_seconds",
            "Total time the control loop ran (divide by the runs for the mean).",
            value=stats.get("duration_s_sum", 0.0),
        )
        yield GaugeMetricFamily(
            "evce_control_loop_last_duration_seconds",
            "Duration of the last run of the control loop.",
            value=stats.get("last_duration_s", 0.0),
        )


def _address_allowed(address: str | None) -> bool:
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(
        ip in ipaddress.ip_network(network, strict=False)
        for network in settings.METRICS_ALLOWED_IPS
    )


def _token_user(request: HttpRequest):
    try:
        found = TokenAuthentication().authenticate(request)
    except exceptions.AuthenticationFailed:
        return None
    user = found[0] if found else None
    return user if user is not None and user.is_active and user.role in READERS else None


def metrics(request: HttpRequest) -> HttpResponse:
    """The scrape: an allowed address, or ``Authorization: Token <key>`` of an API user."""
    if not _address_allowed(request.META.get("REMOTE_ADDR")) and _token_user(request) is None:
        response = HttpResponse("An API token is needed.\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Token realm="metrics"'
        return response
    registry = CollectorRegistry(auto_describe=False)
    registry.register(EvceCollector())
    try:
        body = generate_latest(registry)
    except (RedisError, OSError):
        return HttpResponse(
            "Live state is unavailable for a moment.\n", status=503, content_type="text/plain"
        )
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
