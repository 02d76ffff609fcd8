"""Meter models and meters: reading, polling, hot state and history.

Polling keeps the latest reading of every meter in Redis (what the control
loop and the dashboard read), a downsampled history in the database, and the
lost/recovered state machine: a meter is *lost* after N consecutive failed
polls and back on the first success (SPEC §4). Until it is lost, a failing
meter keeps its last good values, which stay usable while they are younger
than the loss horizon (:func:`meter_loss_horizon_s`): one missed answer must
not drop a zone to its degraded setpoint and back. Both transitions are
device-log events and ask for a re-allocation, because a zone whose meter is
lost must run on its degraded setpoint at once.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.devicelog.models import EventCategory, EventLevel
from apps.devicelog.services import (
    configuration_deleted_log,
    configuration_save_logged,
    device_log_write,
    fields_assign,
    object_save_logged,
    settings_only,
)
from apps.meters.modbus.builtin import BUILTIN_MODELS
from apps.meters.modbus.client import (
    BlockingMeterSession,
    Connection,
    MeterError,
    MeterReading,
    RtuConnection,
    TcpConnection,
)
from apps.meters.modbus.registers import RegisterMap, register_map_errors
from apps.meters.models import ConnectionType, Meter, MeterModel, MeterRecord
from apps.meters.selectors import MeterState, PhaseCurrents
from apps.meters.signals import meter_state_changed
from apps.meters.state import MeterStatus, meters_hot_state, meters_hot_state_set
from apps.siteconfig.models import SiteSettings
from evce_site.hotstate import key, redis_client

logger = logging.getLogger(__name__)

HISTORY_PERIOD_S = 10.0
# A zone meter's phase current this far from what the last allocation used asks for
# a re-allocation.
REBALANCE_DELTA_A = 0.5
# Last good values stay usable at least this long: polls delayed behind other work
# must not flip a zone into degraded mode.
LOSS_HORIZON_MIN_S = 5.0


def meter_loss_horizon_s(*, poll_interval_ms: int, lost_after: int, timeout_ms: int) -> float:
    """How old a meter's last good values may be while the meter is not yet lost.

    A failing meter is tried once per period, or once per timeout when that is
    longer, and is lost at the ``lost_after``-th failure; one more attempt of
    margin covers the poll in progress. Values older than this belong to a
    meter that should have been declared lost (the poller stopped, or fell
    behind): they are not used, which fails closed.
    """
    attempt_s = max(poll_interval_ms, timeout_ms) / 1000
    return max(LOSS_HORIZON_MIN_S, (lost_after + 1) * attempt_s + poll_interval_ms / 1000)


@transaction.atomic
def builtin_models_sync() -> int:
    """Make the database's built-in models equal to the ones shipped in code.

    Runs after every migration, so an upgrade that corrects a register map
    reaches existing installations. Returns how many rows were written.
    """
    written = 0
    for name, register_map in BUILTIN_MODELS.items():
        data = register_map.to_dict()
        model = MeterModel.objects.filter(name=name).first()
        if model is None:
            model = MeterModel(name=name)
        if (model.builtin, model.description, model.register_map) == (
            True,
            data["description"],
            data["registers"],
        ):
            continue
        model.builtin = True
        model.description = data["description"]
        model.register_map = data["registers"]
        model.save()
        written += 1
    return written


class MeterModelImportError(Exception):
    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


@transaction.atomic
def meter_model_import(data: str | bytes | dict, *, user=None) -> tuple[MeterModel, bool]:
    """Create or update a custom meter model from its JSON; built-in models stay as shipped."""
    errors = register_map_errors(data)
    if errors:
        raise MeterModelImportError(errors)
    register_map = RegisterMap.from_json(data)
    model = MeterModel.objects.filter(name=register_map.name).first()
    if model is not None and model.builtin:
        raise MeterModelImportError(
            [f"name: {register_map.name!r} is a built-in model and cannot be replaced"]
        )
    created = model is None
    model = model or MeterModel(name=register_map.name)
    payload = register_map.to_dict()
    changes = fields_assign(
        model, {"description": payload["description"], "register_map": payload["registers"]}
    )
    # The same model again writes nothing.
    object_save_logged(
        model,
        changes,
        created=created,
        category=EventCategory.CONFIGURATION,
        event="meter_model_imported",
        message=f"Meter model {model.name} {'created' if created else 'updated'} from JSON.",
        user=user,
    )
    return model, created


METER_SETTINGS = (
    "name",
    "model",
    "connection_type",
    "host",
    "port",
    "unit_id",
    "serial_device",
    "baudrate",
    "bytesize",
    "parity",
    "stopbits",
    "timeout_ms",
    "is_reporting",
    "enabled",
)


@transaction.atomic
def meter_save(meter: Meter | None, *, user=None, **values: Any) -> tuple[Meter, bool]:
    """Create (``meter`` None) or change a meter's settings; returns it and whether it is new.

    ``ValidationError`` (nothing saved) on a bad value; a change that changes
    nothing writes nothing.
    """
    settings_only(values, METER_SETTINGS, what="meter settings")
    created = meter is None
    current = Meter() if created else Meter.objects.select_for_update().get(pk=meter.pk)
    changes = fields_assign(current, values)
    configuration_save_logged(
        current, changes, created=created, kind="meter", label=f"Meter {current.name}", user=user
    )
    return current, created


@transaction.atomic
def meter_delete(meter: Meter, *, user=None) -> None:
    """Delete a meter that no zone and no external input reads (they would lose their data)."""
    current = Meter.objects.select_for_update().get(pk=meter.pk)
    users = [
        f"zone {zone.name}"
        for relation in ("measured_zone", "produced_zone")
        if (zone := getattr(current, relation, None)) is not None
    ]
    users += [f"input {i.number}" for i in current.external_inputs.all()]
    if users:
        raise ValidationError(
            f"Meter {current.name} is used by {', '.join(sorted(users))}: detach it first."
        )
    current.delete()
    configuration_deleted_log(kind="meter", label=f"Meter {current.name}", user=user)


@transaction.atomic
def meter_model_save(
    model: MeterModel | None, *, name: str, description: str, register_map: list, user=None
) -> MeterModel:
    """Create or change a custom meter model from the admin; built-in models stay as shipped."""
    current = MeterModel() if model is None else MeterModel.objects.get(pk=model.pk)
    if current.builtin:
        raise ValidationError(f"{current.name!r} is a built-in model and cannot be changed")
    changes = fields_assign(
        current, {"name": name, "description": description, "register_map": register_map}
    )
    object_save_logged(
        current,
        changes,
        created=model is None,
        category=EventCategory.CONFIGURATION,
        event="meter_model_saved",
        message=f"Meter model {current.name} {'created' if model is None else 'changed'}.",
        user=user,
        data={"changes": {k: v for k, v in changes.items() if k != "register_map"}},
    )
    return current


@transaction.atomic
def meter_model_delete(model: MeterModel, *, user=None) -> None:
    """Delete a custom meter model that no meter uses."""
    current = MeterModel.objects.get(pk=model.pk)
    if current.builtin:
        raise ValidationError(f"{current.name!r} is a built-in model and cannot be deleted")
    if current.meters.exists():
        raise ValidationError(f"Meter model {current.name} is used by meters: change them first.")
    current.delete()
    configuration_deleted_log(kind="meter_model", label=f"Meter model {current.name}", user=user)


def meter_connection(meter: Meter) -> Connection:
    """The Modbus address of a meter, as the reader takes it."""
    if meter.connection_type == ConnectionType.RTU:
        return RtuConnection(
            device=meter.serial_device,
            unit_id=meter.unit_id,
            baudrate=meter.baudrate,
            bytesize=meter.bytesize,
            parity=meter.parity,
            stopbits=meter.stopbits,
        )
    return TcpConnection(host=meter.host, port=meter.port, unit_id=meter.unit_id)


def meter_read_once(meter: Meter) -> MeterReading:
    """Read a meter once (admin "test connection", ``manage.py meter read``).

    Raises ``MeterError`` with a message an installer can act on.
    """
    with BlockingMeterSession(timeout_s=meter.timeout_ms / 1000) as session:
        return session.read_meter(
            meter_connection(meter), meter.model.as_register_map(), read_at=timezone.now()
        )


# --------------------------------------------------------------------------
# Hot state (its keys: apps.meters.state; typed reads: apps.meters.selectors)
# --------------------------------------------------------------------------


_BASIS = key("meters", "allocation-basis")


def meters_allocation_basis_set(readings: dict[int, PhaseCurrents | None]) -> None:
    """Record the readings an allocation used, per meter (None: taken as lost).

    The poller asks for a new allocation when a reading departs from these,
    not from the previous poll: a load creeping up by less than the threshold
    at every poll must still be seen once it adds up.
    """
    pipe = redis_client().pipeline()
    pipe.delete(_BASIS)
    if readings:
        pipe.hset(_BASIS, mapping={str(k): json.dumps(v) for k, v in readings.items()})
    pipe.execute()


def meters_allocation_basis() -> dict[int, PhaseCurrents | None]:
    return {
        int(k): (tuple(v) if (v := json.loads(raw)) is not None else None)
        for k, raw in redis_client().hgetall(_BASIS).items()
    }


# --------------------------------------------------------------------------
# Polling
# --------------------------------------------------------------------------

_session: BlockingMeterSession | None = None
_session_lock = threading.Lock()


def poll_session() -> BlockingMeterSession:
    """One session per worker process: links stay open between polls."""
    global _session
    with _session_lock:
        if _session is None:
            _session = BlockingMeterSession(timeout_s=1.0)
        return _session


@dataclass(frozen=True)
class PollResult:
    read: int
    failed: int
    lost: list[str]
    recovered: list[str]
    rebalance: bool


def meters_poll(*, now: datetime | None = None, lost_after: int | None = None) -> PollResult:
    """Read every enabled meter concurrently and update hot state and history."""
    now = now or timezone.now()
    site = SiteSettings.load()
    if lost_after is None:
        lost_after = site.meter_lost_after_polls
    poll_interval_ms = site.meter_poll_interval_ms
    meters = list(Meter.objects.filter(enabled=True).select_related("model"))
    if not meters:
        return PollResult(0, 0, [], [], False)
    maps = {m.model_id: _register_map(m.model) for m in meters}
    requests = [(meter_connection(m), maps[m.model_id]) for m in meters]
    timeout_ms = max(m.timeout_ms for m in meters)
    timeout_s = timeout_ms / 1000
    results = poll_session().read_meters(requests, read_at=now, timeout_s=timeout_s)
    # The registers were read between ``now`` and here: the control loop needs
    # both ends to know which setpoints the stations were on at that moment.
    done = timezone.now()
    previous = meters_hot_state([m.pk for m in meters])
    zone_meter_ids = _zone_meter_ids()
    basis = meters_allocation_basis()
    horizon = timedelta(
        seconds=meter_loss_horizon_s(
            poll_interval_ms=poll_interval_ms, lost_after=lost_after, timeout_ms=timeout_ms
        )
    )
    states: dict[int, dict[str, Any]] = {}
    lost, recovered, records = [], [], []
    rebalance = False
    failed = 0
    for meter, result in zip(meters, results, strict=True):
        before = previous.get(meter.pk) or {"status": MeterStatus.NOT_CONNECTED, "failures": 0}
        state = _next_state(before, result, now, lost_after, done=done, horizon=horizon)
        if state["status"] == MeterStatus.CONNECTED and _history_due(before, now):
            state["recorded_at"] = now.isoformat()
            records.append(_record(meter, result, now))
        states[meter.pk] = state
        if isinstance(result, MeterError):
            failed += 1
        if state["status"] == MeterStatus.LOST and before["status"] != MeterStatus.LOST:
            lost.append(meter.name)
            _log_transition(meter, lost=True, error=state.get("error", ""))
        elif state["status"] == MeterStatus.CONNECTED and before["status"] == MeterStatus.LOST:
            recovered.append(meter.name)
            _log_transition(meter, lost=False)
        if meter.pk in zone_meter_ids and _departs_from_allocation(
            basis, meter.pk, MeterState.from_hot(meter.pk, state).usable_currents_a(now)
        ):
            rebalance = True
    meters_hot_state_set(states)
    if records:
        MeterRecord.objects.bulk_create(records)
    if rebalance:
        meter_state_changed.send(sender=Meter)
    return PollResult(len(meters) - failed, failed, lost, recovered, rebalance)


_map_cache: dict[tuple[int, str], RegisterMap] = {}


def _register_map(model: MeterModel) -> RegisterMap:
    cache_key = (model.pk, json.dumps(model.register_map, sort_keys=True))
    register_map = _map_cache.get(cache_key)
    if register_map is None:
        register_map = _map_cache[cache_key] = model.as_register_map()
    return register_map


def _zone_meter_ids() -> set[int]:
    """The meters that measure a zone or its production (the zones point at them)."""
    return set(
        Meter.objects.filter(
            Q(measured_zone__isnull=False) | Q(produced_zone__isnull=False)
        ).values_list("pk", flat=True)
    )


def _next_state(
    before: dict[str, Any],
    result: MeterReading | MeterError,
    now: datetime,
    lost_after: int,
    *,
    done: datetime | None = None,
    horizon: timedelta = timedelta(seconds=LOSS_HORIZON_MIN_S),
) -> dict[str, Any]:
    """The hot state after one poll; a failure keeps the last good values and their age."""
    if isinstance(result, MeterError):
        failures = int(before.get("failures", 0)) + 1
        was_lost = before.get("status") == MeterStatus.LOST
        status = MeterStatus.LOST if failures >= lost_after or was_lost else MeterStatus.ERROR
        kept = ("values", "read_at", "read_done_at", "usable_until", "recorded_at")
        state = {k: v for k, v in before.items() if k in kept}
        state.update(status=status, failures=failures, error=str(result), failed_at=now.isoformat())
        return state
    return {
        "status": MeterStatus.CONNECTED,
        "failures": 0,
        "values": result.values(),
        "read_at": now.isoformat(),
        "read_done_at": (done or now).isoformat(),
        "usable_until": (now + horizon).isoformat(),
        "recorded_at": before.get("recorded_at"),
    }


def _departs_from_allocation(
    basis: dict[int, PhaseCurrents | None], meter_id: int, usable: PhaseCurrents | None
) -> bool:
    """True when the control loop must look again at what this meter reads.

    It must when the meter became usable or unusable, or when a phase current
    is :data:`REBALANCE_DELTA_A` away from what the last allocation used; a
    meter failing with its last good values (not lost) changes nothing.
    """
    if meter_id not in basis:
        return True  # no allocation has used it yet
    used = basis[meter_id]
    if (used is None) != (usable is None):
        return True
    if used is None or usable is None:
        return False
    return any(abs(a - b) >= REBALANCE_DELTA_A for a, b in zip(used, usable, strict=True))


def _history_due(before: dict[str, Any], now: datetime) -> bool:
    recorded_at = before.get("recorded_at")
    if not recorded_at:
        return True
    return now - datetime.fromisoformat(recorded_at) >= timedelta(seconds=HISTORY_PERIOD_S)


def _record(meter: Meter, reading: MeterReading, now: datetime) -> MeterRecord:
    return MeterRecord(
        meter=meter,
        at=now,
        current_l1_a=reading.current_l1_a,
        current_l2_a=reading.current_l2_a,
        current_l3_a=reading.current_l3_a,
        power_total_kw=reading.power_total_kw,
        energy_delivered_kwh=reading.energy_delivered_kwh,
    )


def _log_transition(meter: Meter, *, lost: bool, error: str = "") -> None:
    if lost:
        device_log_write(
            category=EventCategory.COMMUNICATION,
            level=EventLevel.ERROR,
            event="meter_lost",
            message=f"Meter {meter.name} lost: {error}",
            data={"meter": meter.name, "error": error},
        )
    else:
        device_log_write(
            category=EventCategory.COMMUNICATION,
            event="meter_recovered",
            message=f"Meter {meter.name} answers again.",
            data={"meter": meter.name},
        )
