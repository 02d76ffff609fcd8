"""The outbox of transaction messages: persisted, in order per station, nothing dropped."""

from __future__ import annotations

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from apps.devicelog.models import DeviceLogEntry
from apps.stations.services import station_delete
from apps.supervision.models import OutboxMessage, OutboxState
from apps.supervision.selectors import outbox_backlog
from apps.supervision.services import (
    outbox_attempt_failed,
    outbox_delivered,
    outbox_enqueue,
    outbox_next,
    outbox_retry,
)
from tests.stations.factories import StationFactory

pytestmark = pytest.mark.django_db


def deliver_all(station) -> list[tuple[str, int]]:
    """Take the station's messages one by one, as the relay will, and acknowledge them."""
    delivered = []
    while (message := outbox_next(station=station)) is not None:
        assert outbox_delivered(message=message)
        delivered.append((message.action, message.payload["n"]))
    return delivered


def test_messages_are_delivered_in_order_per_station():
    a, b = StationFactory(), StationFactory()
    for n, (station, action) in enumerate(
        [
            (a, "StartTransaction"),
            (b, "StartTransaction"),
            (a, "MeterValues"),
            (a, "MeterValues"),
            (b, "StopTransaction"),
            (a, "StopTransaction"),
        ]
    ):
        outbox_enqueue(station=station, action=action, payload={"n": n}, transaction_id=7)

    assert list(OutboxMessage.objects.filter(station=a).values_list("sequence", flat=True)) == [
        1,
        2,
        3,
        4,
    ]
    assert deliver_all(a) == [
        ("StartTransaction", 0),
        ("MeterValues", 2),
        ("MeterValues", 3),
        ("StopTransaction", 5),
    ]
    assert deliver_all(b) == [("StartTransaction", 1), ("StopTransaction", 4)]
    assert OutboxMessage.objects.filter(state=OutboxState.DELIVERED).count() == 6
    assert all(m.sent_at is not None for m in OutboxMessage.objects.all())


def test_a_failed_message_stays_first_until_its_attempts_run_out_then_is_flagged():
    station = StationFactory(identity="CP1")
    stop = outbox_enqueue(station=station, action="StopTransaction", payload={"n": 0})
    outbox_enqueue(station=station, action="MeterValues", payload={"n": 1})

    for _ in range(2):
        assert outbox_next(station=station).pk == stop.pk
        outbox_attempt_failed(message=stop, error="connection refused", max_attempts=3)
    assert OutboxMessage.objects.get(pk=stop.pk).attempts == 2
    outbox_attempt_failed(message=stop, error="connection refused", max_attempts=3)

    flagged = OutboxMessage.objects.get(pk=stop.pk)
    assert (flagged.state, flagged.attempts, flagged.last_error) == (
        OutboxState.FLAGGED,
        3,
        "connection refused",
    )
    assert DeviceLogEntry.objects.filter(event="cpo_message_flagged").count() == 1
    # Kept and counted in the backlog, while the queue moves on.
    assert outbox_backlog(station) == 2
    assert deliver_all(station) == [("MeterValues", 1)]
    assert outbox_next(station=station) is None

    assert outbox_retry(messages=[flagged], user=None) == 1
    again = outbox_next(station=station)
    assert (again.pk, again.state, again.attempts) == (stop.pk, OutboxState.PENDING, 0)
    assert outbox_backlog(station) == 1


def test_delivering_a_message_twice_is_refused():
    station = StationFactory()
    message = outbox_enqueue(station=station, action="MeterValues", payload={"n": 0})
    assert outbox_delivered(message=message)
    assert not outbox_delivered(message=message)


def test_only_transaction_messages_are_queued():
    with pytest.raises(ValidationError):
        outbox_enqueue(station=StationFactory(), action="Heartbeat", payload={})
    assert not OutboxMessage.objects.exists()


def test_a_station_with_undelivered_messages_is_not_deleted():
    station = StationFactory(identity="CP1")
    message = outbox_enqueue(station=station, action="StopTransaction", payload={"n": 0})

    with pytest.raises(ValidationError, match="not yet delivered"):
        station_delete(station)
    assert OutboxMessage.objects.filter(pk=message.pk).exists()

    outbox_delivered(message=message)
    station_delete(station)
    assert not OutboxMessage.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_queue_is_read_back_from_another_connection_in_order():
    """What one process queued, another (a restarted relay) reads from the database."""
    station = StationFactory()
    for n in range(5):
        outbox_enqueue(station=station, action="MeterValues", payload={"n": n})
    seen: list[int] = []

    def relay_after_restart() -> None:
        try:
            while (message := outbox_next(station=station)) is not None:
                outbox_delivered(message=message)
                seen.append(message.payload["n"])
        finally:
            connection.close()

    thread = threading.Thread(target=relay_after_restart)
    thread.start()
    thread.join()
    assert seen == [0, 1, 2, 3, 4]


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="concurrent writers need a server database"
)
def test_concurrent_writers_for_one_station_get_distinct_consecutive_sequences():
    station = StationFactory()
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def writer(worker: int) -> None:
        try:
            start.wait()
            for n in range(10):
                outbox_enqueue(
                    station=station, action="MeterValues", payload={"n": n, "worker": worker}
                )
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    rows = list(OutboxMessage.objects.filter(station=station).order_by("sequence"))
    assert [m.sequence for m in rows] == list(range(1, 41))
    # Each writer's messages keep the order it queued them in.
    for worker in range(4):
        assert [m.payload["n"] for m in rows if m.payload["worker"] == worker] == list(range(10))
