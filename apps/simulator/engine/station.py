"""One simulated charge point: an OCPP 1.6-J client with connectors and the EVs plugged in.

The station keeps its state (configuration, profiles, local list, open
transactions, the queue of unsent transaction messages) across connections,
as a real one does across network drops and reboots. It works offline:
EVs keep charging under the profiles it holds, and its transaction messages
wait in order until it is back.

Three kinds of task run per station: a timer (``step``: EV physics, meter
samples, status changes, departures, heartbeats), the connection loop
(connect, boot, send, reconnect with back-off) and short-lived tasks for
what waits on the network (authorising a card).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import random
from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime
from typing import Any

from ocpp.exceptions import OCPPError, UnknownCallErrorCodeError, ValidationError
from ocpp.v16 import call
from ocpp.v16.datatypes import IdTagInfo
from ocpp.v16.enums import (
    AuthorizationStatus,
    AvailabilityStatus,
    AvailabilityType,
    ChargePointErrorCode,
    ChargePointStatus,
    ChargingProfilePurposeType,
    ChargingProfileStatus,
    ChargingRateUnitType,
    ClearChargingProfileStatus,
    ConfigurationStatus,
    DiagnosticsStatus,
    FirmwareStatus,
    ReadingContext,
    Reason,
    RegistrationStatus,
    RemoteStartStopStatus,
    ResetStatus,
    ResetType,
    TriggerMessageStatus,
    UnlockStatus,
    UpdateStatus,
)
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException
from websockets.typing import Subprotocol

from apps.simulator.engine.auth import LocalAuthorization, accepted_at, id_tag_info_from_ocpp
from apps.simulator.engine.clock import Clock, ScaledClock, format_ocpp_time, parse_ocpp_time
from apps.simulator.engine.config_keys import (
    FREE_VEND_ACTIVE,
    FREE_VEND_ID_TAG,
    FREE_VEND_KEYS,
    ConfigurationStore,
)
from apps.simulator.engine.ev import IEC61851_MIN_CURRENT_A, NOMINAL_VOLTAGE_V, Ev, random_ev
from apps.simulator.engine.meter import MeterReading, meter_value
from apps.simulator.engine.model import (
    ConnectorState,
    Endpoint,
    LocalTransaction,
    StationSpec,
    StationTiming,
    Visit,
    VisitState,
)
from apps.simulator.engine.outbox import Outbox, Outgoing, StationOffline
from apps.simulator.engine.profiles import (
    ChargingProfile,
    ConnectorContext,
    ProfileError,
    ProfileStore,
    period_limit_a,
    profile_from_ocpp,
)
from apps.simulator.engine.session import OcppSession
from apps.simulator.engine.wiring import PhaseCurrents, ocpp_phase_rotation, phase_count

logger = logging.getLogger("apps.simulator")

OCPP_SUBPROTOCOL = Subprotocol("ocpp1.6")

# How a CALL can fail without the connection failing: a CALLERROR, an answer
# that does not validate, or no answer in time.
CALL_FAILURES = (OCPPError, ValidationError, UnknownCallErrorCodeError, TimeoutError)


async def cancel_and_wait(*tasks: asyncio.Task[Any]) -> None:
    """Cancel ``tasks`` and wait until they are all finished.

    Cancels again while any is still running: on Python 3.11 ``asyncio.wait_for``
    (used by the ocpp library for every CALL) can swallow a cancellation that
    coincides with the answer arriving.
    """
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.5)


class StationSim:
    """A simulated OCPP 1.6-J charge point."""

    def __init__(
        self,
        spec: StationSpec,
        endpoint: Endpoint,
        *,
        clock: Clock | None = None,
        timing: StationTiming | None = None,
        rng: random.Random | None = None,
        ev_factory: Callable[[], Ev] | None = None,
    ) -> None:
        if not spec.connectors:
            raise ValueError("a station needs at least one connector")
        self.spec = spec
        self.endpoint = endpoint
        self.clock: Clock = clock or ScaledClock()
        self.timing = timing or StationTiming()
        self.rng = rng or random.Random()
        self._ev_factory = ev_factory or (lambda: random_ev(self.rng))
        self.connectors: dict[int, ConnectorState] = {
            c.connector_id: ConnectorState(c, energy_wh=float(self.rng.randrange(0, 2_000_000)))
            for c in spec.connectors
        }
        rotation = ",".join(
            f"{c.connector_id}.{ocpp_phase_rotation(c.wiring)}" for c in spec.connectors
        )
        configuration = dict(spec.configuration)
        if spec.password and "AuthorizationKey" not in configuration:
            configuration["AuthorizationKey"] = spec.password
        self.config = ConfigurationStore(
            configuration,
            readonly_values={
                "NumberOfConnectors": str(len(spec.connectors)),
                "ConnectorPhaseRotation": rotation,
            },
            extra_keys=FREE_VEND_KEYS if spec.free_vend else (),
        )
        self.profiles = ProfileStore(
            len(spec.connectors),
            max_stack_level=self.config.get_int("ChargeProfileMaxStackLevel"),
            max_periods=self.config.get_int("ChargingScheduleMaxPeriods"),
            max_profiles=self.config.get_int("MaxChargingProfilesInstalled"),
        )
        self.auth = LocalAuthorization(
            max_list_length=self.config.get_int("LocalAuthListMaxLength"),
            max_update_length=self.config.get_int("SendLocalListMaxLength"),
        )
        self.outbox = Outbox()

        self.connected = False
        self.accepted = False
        self.registration_status: str | None = None
        self.last_error: str | None = None
        self.boot_count = 0
        self.connection_count = 0
        self.sessions_started = 0
        self.sessions_stopped = 0
        self.energy_delivered_wh = 0.0

        self._station_status: str = ChargePointStatus.available
        self._after_reply: list[Callable[[], None]] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._disconnect = asyncio.Event()
        self._stopped = asyncio.Event()
        self._stopping = False
        self._rebooting = False
        self._flush_on_disconnect = False
        self._abort_on_disconnect = False
        self._offline_until_s = 0.0
        self._last_step_s: float | None = None
        self._next_heartbeat_s = 0.0

    def __repr__(self) -> str:
        return f"StationSim({self.identity!r})"

    @property
    def identity(self) -> str:
        return self.spec.identity

    # ------------------------------------------------------------------ life cycle

    async def run(self, *, start_delay_s: float = 0.0) -> None:
        """Run until ``shutdown``: the station's timer and its connection loop.

        ``start_delay_s`` postpones the first connection, so that a large
        fleet does not connect all at once.
        """
        timer = asyncio.create_task(self._timer_loop(), name=f"{self.identity} timer")
        try:
            await self._sleep_unless_stopped(start_delay_s)
            await self._connection_loop()
        finally:
            await cancel_and_wait(timer, *self._tasks)

    async def shutdown(self, *, reason: str = Reason.other) -> None:
        """Stop cleanly: end open transactions, deliver what can be delivered, disconnect."""
        for connector in self.connectors.values():
            self._stop_transaction(connector, reason)
        if self.accepted:
            # Let the central system see the stops and the final statuses.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.outbox.wait_empty(), self.timing.flush_timeout_wall_s)
        self._stopping = True
        self._stopped.set()
        self._disconnect.set()

    def simulate_outage(self, duration_s: float) -> None:
        """Lose the network for ``duration_s``: the link breaks and stays down meanwhile."""
        self._offline_until_s = self.clock.monotonic_s() + duration_s
        self._abort_on_disconnect = True
        self._disconnect.set()

    # ------------------------------------------------------------------ EVs

    def free_connector_ids(self) -> list[int]:
        """Connectors where an arriving EV can plug in."""
        return [
            c.connector_id
            for c in self.connectors.values()
            if c.visit is None and c.operative and not c.remote_start_pending
        ]

    def arrive(
        self,
        ev: Ev,
        id_tag: str,
        *,
        connector_id: int | None = None,
        dwell_s: float | None = None,
    ) -> int | None:
        """An EV plugs in and its driver badges ``id_tag``; returns the connector, or None.

        With an empty ``id_tag`` nobody badges: the station starts by itself
        when free vend is on, otherwise the EV waits for a remote start. The
        driver leaves after ``dwell_s``, or when the EV has been full for a
        while when None.
        """
        free = self.free_connector_ids()
        if connector_id is None:
            connector_id = free[0] if free else None
        if connector_id is None or connector_id not in free:
            return None
        connector = self.connectors[connector_id]
        now_s = self.clock.monotonic_s()
        visit = Visit(
            ev=ev,
            id_tag=id_tag,
            plugged_at_s=now_s,
            leave_at_s=now_s + dwell_s if dwell_s is not None else None,
        )
        connector.visit = visit
        self._refresh()
        if id_tag:
            self._spawn(self._authorize_and_start(connector, visit))
        elif self._free_vend_active():
            visit.id_tag = self.config.get(FREE_VEND_ID_TAG)
            self._start_transaction(connector, visit)
        return connector_id

    def _free_vend_active(self) -> bool:
        return self.spec.free_vend and self.config.get_bool(FREE_VEND_ACTIVE)

    def phase_currents_a(self) -> PhaseCurrents:
        """Current drawn by this station's EVs on the building's L1, L2, L3."""
        l1 = l2 = l3 = 0.0
        for connector in self.connectors.values():
            a, b, c = connector.building_currents_a
            l1, l2, l3 = l1 + a, l2 + b, l3 + c
        return l1, l2, l3

    # ------------------------------------------------------------------ timer

    async def _timer_loop(self) -> None:
        # Spread stations over the step so a thousand of them do not wake together.
        await self.clock.sleep(self.rng.uniform(0, self.timing.step_s))
        while True:
            try:
                self.step()
            except Exception:
                logger.exception("%s: simulation step failed", self.identity)
            await self.clock.sleep(self.timing.step_s)

    def step(self) -> None:
        """Advance the simulation to the clock's current time."""
        now_s = self.clock.monotonic_s()
        now = self.clock.now()
        self._integrate(now_s)
        for connector in self.connectors.values():
            self._advance_visit(connector, now_s)
        self._apply_offers(now)
        interval_s = self.config.get_int("MeterValueSampleInterval")
        for connector in self.connectors.values():
            if connector.transaction and interval_s > 0 and now_s >= connector.next_sample_s:
                self._send_meter_values(connector, ReadingContext.sample_periodic)
                connector.next_sample_s += interval_s
                if connector.next_sample_s <= now_s:
                    connector.next_sample_s = now_s + interval_s
            self._update_status(connector)
        self._update_station_status()
        heartbeat_s = self.config.get_int("HeartbeatInterval")  # 0: no heartbeats
        if self.accepted and heartbeat_s > 0 and now_s >= self._next_heartbeat_s:
            self._send_volatile(call.Heartbeat, label="Heartbeat")
            self._next_heartbeat_s = now_s + heartbeat_s

    def _integrate(self, now_s: float) -> None:
        """Charge the EVs for the time since the last call, at the currents they drew."""
        elapsed_s = 0.0 if self._last_step_s is None else max(0.0, now_s - self._last_step_s)
        self._last_step_s = now_s
        for connector in self.connectors.values():
            visit = connector.visit
            if connector.transaction and visit and connector.drawn_a > 0:
                energy_wh = visit.ev.charge(
                    connector.drawn_a, connector.phases_used, elapsed_s, NOMINAL_VOLTAGE_V
                )
                connector.energy_wh += energy_wh
                self.energy_delivered_wh += energy_wh

    def _advance_visit(self, connector: ConnectorState, now_s: float) -> None:
        visit = connector.visit
        if visit is None:
            return
        if connector.transaction is not None:
            if visit.ev.full and visit.full_since_s is None:
                visit.full_since_s = now_s
            dwell_over = visit.leave_at_s is not None and now_s >= visit.leave_at_s
            full_for_long = (
                visit.full_since_s is not None
                and now_s - visit.full_since_s >= self.timing.leave_after_full_s
            )
            if dwell_over or full_for_long:
                # The driver comes back, badges to end the session and unplugs.
                self._stop_transaction(connector, Reason.local, id_tag=visit.id_tag)
                visit.unplug_at_s = now_s + self.timing.unplug_after_local_stop_s
            return
        if visit.state in (VisitState.FINISHED, VisitState.REJECTED):
            due_s = visit.unplug_at_s
        else:
            due_s = visit.leave_at_s  # the driver gives up waiting for authorisation
        if due_s is not None and now_s >= due_s:
            self._unplug(connector)

    def _contexts(self) -> list[ConnectorContext]:
        contexts = []
        for connector in self.connectors.values():
            wired = phase_count(connector.spec.wiring)
            visit = connector.visit
            transaction = connector.transaction
            contexts.append(
                ConnectorContext(
                    connector_id=connector.connector_id,
                    max_current_a=connector.spec.max_current_a,
                    phases_in_use=min(wired, visit.ev.model.phases) if visit else wired,
                    transaction_start=transaction.started_at if transaction else None,
                    transaction_id=transaction.transaction_id if transaction else None,
                )
            )
        return contexts

    def _apply_offers(self, now: datetime) -> None:
        """Set each connector's offer from its profiles and what its EV then draws."""
        offers = self.profiles.offers(self._contexts(), now)
        for connector in self.connectors.values():
            offer = offers[connector.connector_id]
            wired = phase_count(connector.spec.wiring)
            connector.offered_a = offer.current_a
            connector.offered_phases = min(wired, offer.number_phases or 3)
            visit = connector.visit
            if connector.transaction is not None and visit is not None:
                connector.phases_used = min(visit.ev.model.phases, connector.offered_phases)
                connector.drawn_a = visit.ev.draw_current_a(offer.current_a)
            else:
                connector.phases_used = 0
                connector.drawn_a = 0.0

    def _refresh(self) -> None:
        """React now (not at the next step) to a change of profiles, visits or availability.

        Every connector is re-evaluated: a station limit is shared, so one
        connector's change can change another's offer.
        """
        self._integrate(self.clock.monotonic_s())
        self._apply_offers(self.clock.now())
        for connector in self.connectors.values():
            self._update_status(connector)
        self._update_station_status()

    # ------------------------------------------------------------------ statuses

    def _status_of(self, connector: ConnectorState) -> str:
        visit = connector.visit
        if connector.transaction is not None and visit is not None:
            if connector.offered_a < IEC61851_MIN_CURRENT_A:
                return ChargePointStatus.suspended_evse
            if visit.ev.demand_current_a() <= 0:
                return ChargePointStatus.suspended_ev
            return ChargePointStatus.charging
        if not connector.operative:
            return ChargePointStatus.unavailable
        if visit is None:
            return ChargePointStatus.available
        if visit.state is VisitState.FINISHED:
            return ChargePointStatus.finishing
        return ChargePointStatus.preparing

    def _update_status(self, connector: ConnectorState) -> None:
        status = self._status_of(connector)
        if status != connector.status:
            connector.status = status
            self._send_status(connector.connector_id, status)

    def _update_station_status(self) -> None:
        operative = any(c.operative for c in self.connectors.values())
        status = ChargePointStatus.available if operative else ChargePointStatus.unavailable
        if status != self._station_status:
            self._station_status = status
            self._send_status(0, status)

    def _send_status(self, connector_id: int, status: str) -> None:
        at = format_ocpp_time(self.clock.now())
        self._send_volatile(
            lambda: call.StatusNotification(
                connector_id=connector_id,
                error_code=ChargePointErrorCode.no_error,
                status=status,
                timestamp=at,
            ),
            label=f"StatusNotification {connector_id} {status}",
        )

    def _queue_status_snapshot(self) -> None:
        """After a boot the central system learns every connector's state afresh."""
        self._send_status(0, self._station_status)
        for connector in self.connectors.values():
            self._send_status(connector.connector_id, connector.status)

    # ------------------------------------------------------------------ transactions

    async def _authorize_and_start(self, connector: ConnectorState, visit: Visit) -> None:
        visit.attempt += 1
        attempt = visit.attempt
        visit.state = VisitState.AUTHORIZING
        if visit.remote and not self.config.get_bool("AuthorizeRemoteTxRequests"):
            authorized = True
        else:
            authorized = await self._authorize(visit.id_tag)
        if connector.visit is not visit or visit.attempt != attempt or connector.transaction:
            return
        if authorized and connector.operative:
            self._start_transaction(connector, visit)
        else:
            visit.state = VisitState.REJECTED
            visit.unplug_at_s = self.clock.monotonic_s() + self.timing.leave_after_rejection_s

    async def _authorize(self, id_tag: str) -> bool:
        """Decide on a card as OCPP 1.6 says: local list/cache, central system, offline rules."""
        now = self.clock.now()
        local = self.auth.lookup(
            id_tag,
            use_list=self.config.get_bool("LocalAuthListEnabled"),
            use_cache=self.config.get_bool("AuthorizationCacheEnabled"),
        )
        if (
            self.accepted
            and local is not None
            and accepted_at(local, now)
            and self.config.get_bool("LocalPreAuthorize")
        ):
            return True
        if self.accepted:
            try:
                result = await self._request(call.Authorize(id_tag=id_tag), "Authorize")
            except (StationOffline, TimeoutError):
                pass  # decide as an offline station
            except CALL_FAILURES:
                return False
            else:
                info = id_tag_info_from_ocpp(result.id_tag_info)
                self._remember(id_tag, info)
                return accepted_at(info, now)
        if local is not None:
            return self.config.get_bool("LocalAuthorizeOffline") and accepted_at(local, now)
        return self.config.get_bool("AllowOfflineTxForUnknownId")

    def _remember(self, id_tag: str, info: IdTagInfo) -> None:
        if self.config.get_bool("AuthorizationCacheEnabled"):
            self.auth.remember(id_tag, info)

    def _reading(self, connector: ConnectorState, at: datetime) -> MeterReading:
        return MeterReading(
            at=at,
            currents_a=connector.station_currents_a,
            phase_count=phase_count(connector.spec.wiring),
            energy_wh=connector.energy_wh,
            offered_a=connector.offered_a,
            offered_phases=connector.offered_phases,
            voltage_v=NOMINAL_VOLTAGE_V,
        )

    def _start_transaction(self, connector: ConnectorState, visit: Visit) -> None:
        now = self.clock.now()
        transaction = LocalTransaction(
            connector_id=connector.connector_id,
            id_tag=visit.id_tag,
            started_at=now,
            meter_start_wh=round(connector.energy_wh),
            begin=self._reading(connector, now),
        )
        connector.transaction = transaction
        visit.state = VisitState.IN_TRANSACTION
        connector.next_sample_s = self.clock.monotonic_s() + self.config.get_int(
            "MeterValueSampleInterval"
        )
        self.sessions_started += 1
        timestamp = format_ocpp_time(now)
        self._send_durable(
            lambda: call.StartTransaction(
                connector_id=transaction.connector_id,
                id_tag=transaction.id_tag,
                meter_start=transaction.meter_start_wh,
                timestamp=timestamp,
            ),
            on_result=lambda result: self._on_start_result(connector, transaction, result),
            label=f"StartTransaction {connector.connector_id}",
        )
        if visit.charging_profile is not None:
            with contextlib.suppress(ProfileError):
                profile = profile_from_ocpp(
                    connector.connector_id, visit.charging_profile, received_at=now
                )
                self.profiles.install(profile, transaction_active=True)
        self._refresh()

    def _on_start_result(
        self, connector: ConnectorState, transaction: LocalTransaction, result: Any
    ) -> None:
        transaction.transaction_id = int(result.transaction_id)
        info = id_tag_info_from_ocpp(result.id_tag_info)
        self._remember(transaction.id_tag, info)
        if (
            info.status != AuthorizationStatus.accepted
            and connector.transaction is transaction
            and self.config.get_bool("StopTransactionOnInvalidId")
        ):
            self._stop_transaction(connector, Reason.de_authorized)

    def _stop_transaction(
        self, connector: ConnectorState, reason: str, *, id_tag: str | None = None
    ) -> None:
        transaction = connector.transaction
        if transaction is None:
            return
        self._integrate(self.clock.monotonic_s())
        now = self.clock.now()
        end = self._reading(connector, now)
        connector.transaction = None
        connector.drawn_a = 0.0
        connector.phases_used = 0
        self.sessions_stopped += 1
        measurands = self.config.get_list("StopTxnSampledData")
        transaction_data = (
            [
                meter_value(transaction.begin, measurands, ReadingContext.transaction_begin),
                meter_value(end, measurands, ReadingContext.transaction_end),
            ]
            if measurands
            else None
        )
        meter_stop_wh = round(connector.energy_wh)
        timestamp = format_ocpp_time(now)

        def build() -> call.StopTransaction | None:
            if transaction.transaction_id is None:
                return None  # its StartTransaction was never accepted: nothing to stop
            return call.StopTransaction(
                meter_stop=meter_stop_wh,
                timestamp=timestamp,
                transaction_id=transaction.transaction_id,
                reason=reason,
                id_tag=id_tag,
                transaction_data=transaction_data,
            )

        self._send_durable(build, label=f"StopTransaction {connector.connector_id} {reason}")
        self.profiles.end_transaction(connector.connector_id)
        if connector.inoperative_scheduled:
            connector.operative = False
            connector.inoperative_scheduled = False
        visit = connector.visit
        if visit is not None:
            visit.state = VisitState.FINISHED
            unplug_at_s = self.clock.monotonic_s() + self.timing.unplug_after_stop_s
            if visit.unplug_at_s is None or visit.unplug_at_s > unplug_at_s:
                visit.unplug_at_s = unplug_at_s
        self._refresh()

    def _unplug(self, connector: ConnectorState) -> None:
        if connector.transaction is not None:
            self._stop_transaction(connector, Reason.ev_disconnected)
        connector.visit = None
        self._refresh()

    def _send_meter_values(self, connector: ConnectorState, context: str) -> None:
        reading = self._reading(connector, self.clock.now())
        value = meter_value(reading, self.config.get_list("MeterValuesSampledData"), context)
        transaction = connector.transaction
        connector_id = connector.connector_id
        if transaction is None:
            self._send_volatile(
                lambda: call.MeterValues(connector_id=connector_id, meter_value=[value]),
                label=f"MeterValues {connector_id}",
            )
            return

        def build() -> call.MeterValues | None:
            if transaction.transaction_id is None:
                return None
            return call.MeterValues(
                connector_id=connector_id,
                meter_value=[value],
                transaction_id=transaction.transaction_id,
            )

        if context == ReadingContext.trigger:
            self._send_volatile(build, label=f"MeterValues {connector_id}")
        else:
            self._send_durable(build, label=f"MeterValues {connector_id}")

    # ------------------------------------------------------------------ sending

    def _send_volatile(
        self,
        build: Callable[[], Any | None],
        *,
        label: str,
        on_result: Callable[[Any], None] | None = None,
    ) -> None:
        if self.accepted:
            self.outbox.put(Outgoing(build=build, on_result=on_result, label=label))

    def _send_durable(
        self,
        build: Callable[[], Any | None],
        *,
        label: str,
        on_result: Callable[[Any], None] | None = None,
    ) -> None:
        item = Outgoing(build=build, durable=True, on_result=on_result, label=label)
        if not self.outbox.put(item):
            logger.warning("%s: offline buffer full, %s dropped", self.identity, label)

    async def _request(self, payload: Any, label: str) -> Any:
        """Send a CALL through the queue and wait for its answer."""
        if not self.accepted:
            raise StationOffline(self.identity)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.outbox.put(Outgoing(build=lambda: payload, future=future, label=label))
        return await future

    async def _send_loop(self, session: OcppSession) -> None:
        while True:
            item = await self.outbox.head()
            try:
                payload = item.build()
            except Exception:
                logger.exception("%s: cannot build %s", self.identity, item.label)
                payload = None
            if payload is None:
                self.outbox.pop(item)
                if item.future is not None and not item.future.done():
                    item.future.set_result(None)
                continue
            try:
                result = await session.call(payload, suppress=False)
            except CALL_FAILURES as exc:
                item.attempts += 1
                max_attempts = max(1, self.config.get_int("TransactionMessageAttempts"))
                if item.durable and item.attempts < max_attempts:
                    logger.info("%s: %s failed (%r), retrying", self.identity, item.label, exc)
                    retry_s = self.config.get_int("TransactionMessageRetryInterval")
                    await self.clock.sleep(retry_s * item.attempts)
                    continue
                logger.warning("%s: %s failed: %r", self.identity, item.label, exc)
                self.outbox.pop(item)
                if item.future is not None and not item.future.done():
                    item.future.set_exception(exc)
                continue
            self.outbox.pop(item)
            if item.on_result is not None:
                try:
                    item.on_result(result)
                except Exception:
                    logger.exception("%s: handling the answer to %s", self.identity, item.label)
            if item.future is not None and not item.future.done():
                item.future.set_result(result)

    # ------------------------------------------------------------------ connection

    def _auth_headers(self) -> dict[str, str]:
        password = self.config.get("AuthorizationKey")
        if not password:
            return {}
        token = base64.b64encode(f"{self.identity}:{password}".encode()).decode("ascii")
        return {"Authorization": f"Basic {token}"}

    async def _connection_loop(self) -> None:
        failures = 0
        while not self._stopping:
            offline_s = self._offline_until_s - self.clock.monotonic_s()
            if offline_s > 0:
                await self._sleep_unless_stopped(offline_s)
                continue
            self._disconnect.clear()
            self._flush_on_disconnect = self._abort_on_disconnect = False
            try:
                ping_s = self.config.get_int("WebSocketPingInterval")
                async with connect(
                    self.endpoint.station_url(self.identity),
                    subprotocols=[OCPP_SUBPROTOCOL],
                    additional_headers=self._auth_headers(),
                    ssl=self.endpoint.ssl_context(),
                    open_timeout=self.timing.open_timeout_wall_s,
                    ping_interval=ping_s or None,
                    ping_timeout=ping_s or None,
                    close_timeout=2,
                    proxy=None,
                ) as connection:
                    failures = 0
                    await self._serve(connection)
            except (OSError, TimeoutError, WebSocketException) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                logger.info("%s: connection failed: %s", self.identity, self.last_error)
            except Exception as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                logger.exception("%s: connection failed", self.identity)
            finally:
                self._link_down()
            if self._stopping:
                break
            if self._rebooting:
                await self._sleep_unless_stopped(self.timing.reboot_s)
                self._rebooting = False
                continue
            if self._offline_until_s > self.clock.monotonic_s():
                continue
            delay_s = min(
                self.timing.reconnect_max_s, self.timing.reconnect_min_s * 2 ** min(failures, 16)
            )
            failures += 1
            await self._sleep_unless_stopped(delay_s * self.rng.uniform(0.5, 1.0))

    def _link_down(self) -> None:
        self.connected = False
        self.accepted = False
        self.outbox.drop_volatile()

    async def _sleep_unless_stopped(self, duration_s: float) -> None:
        sleeper = asyncio.create_task(self.clock.sleep(duration_s))
        stopped = asyncio.create_task(self._stopped.wait())
        try:
            await asyncio.wait({sleeper, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await cancel_and_wait(sleeper, stopped)

    async def _serve(self, connection: ClientConnection) -> None:
        if connection.subprotocol != OCPP_SUBPROTOCOL:
            raise ConnectionError("the central system did not accept the ocpp1.6 subprotocol")
        self.connected = True
        self.connection_count += 1
        session = OcppSession(self, connection, self.timing.response_timeout_wall_s)
        reader = asyncio.create_task(session.start(), name=f"{self.identity} reader")
        worker = asyncio.create_task(self._serve_accepted(session), name=f"{self.identity} sender")
        disconnect = asyncio.create_task(self._disconnect.wait())
        try:
            done, _ = await asyncio.wait(
                {reader, worker, disconnect}, return_when=asyncio.FIRST_COMPLETED
            )
            if disconnect in done and self._flush_on_disconnect and self.accepted:
                flushed = asyncio.create_task(self.outbox.wait_empty())
                await asyncio.wait(
                    {flushed, reader},
                    timeout=self.timing.flush_timeout_wall_s,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                flushed.cancel()
            if disconnect in done and self._abort_on_disconnect:
                connection.transport.abort()
        finally:
            await cancel_and_wait(reader, worker, disconnect)
        results = [task.exception() for task in (reader, worker) if not task.cancelled()]
        for result in results:
            if isinstance(result, Exception) and not isinstance(
                result, (WebSocketException, asyncio.CancelledError, OSError)
            ):
                logger.error("%s: connection task failed: %r", self.identity, result)

    async def _serve_accepted(self, session: OcppSession) -> None:
        await self._boot(session)
        self.accepted = True
        self._next_heartbeat_s = self.clock.monotonic_s() + self.config.get_int("HeartbeatInterval")
        self._queue_status_snapshot()
        await self._send_loop(session)

    def _boot_payload(self) -> call.BootNotification:
        return call.BootNotification(
            charge_point_vendor=self.spec.vendor,
            charge_point_model=self.spec.model,
            charge_point_serial_number=self.identity[:25],
            firmware_version=self.spec.firmware_version,
        )

    async def _boot(self, session: OcppSession) -> None:
        """BootNotification until Accepted, waiting the interval the central system gives."""
        while True:
            self.boot_count += 1
            try:
                result = await session.call(self._boot_payload(), suppress=False)
            except CALL_FAILURES as exc:
                logger.info("%s: BootNotification failed: %r", self.identity, exc)
                await self.clock.sleep(self.timing.boot_retry_s)
                continue
            self.registration_status = result.status
            interval_s = int(result.interval)
            if result.status == RegistrationStatus.accepted:
                if interval_s > 0:
                    self.config.change("HeartbeatInterval", str(interval_s))
                return
            logger.info("%s: boot %s, retrying in %s s", self.identity, result.status, interval_s)
            await self.clock.sleep(interval_s if interval_s > 0 else self.timing.boot_retry_s)

    def _on_triggered_boot(self, result: Any) -> None:
        self.registration_status = result.status
        if result.status == RegistrationStatus.accepted and int(result.interval) > 0:
            self.config.change("HeartbeatInterval", str(int(result.interval)))

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ central-system requests

    def run_after_reply(self) -> None:
        """Run what the last request asked for, now that its answer is on the wire."""
        actions, self._after_reply = self._after_reply, []
        for action in actions:
            try:
                action()
            except Exception:
                logger.exception("%s: acting on a request failed", self.identity)

    def _later(self, action: Callable[[], None]) -> None:
        self._after_reply.append(action)

    def remote_start(
        self, id_tag: str, connector_id: int | None, charging_profile: Mapping[str, Any] | None
    ) -> str:
        """RemoteStartTransaction: a driver starts from an app; with no EV plugged, one arrives."""
        if charging_profile is not None:
            if (
                charging_profile.get("charging_profile_purpose")
                != ChargingProfilePurposeType.tx_profile
            ):
                return RemoteStartStopStatus.rejected
            try:
                profile_from_ocpp(connector_id or 1, charging_profile, received_at=self.clock.now())
            except ProfileError:
                return RemoteStartStopStatus.rejected
        connector = self._remote_start_target(connector_id)
        if connector is None:
            return RemoteStartStopStatus.rejected
        connector.remote_start_pending = True
        self._later(lambda: self._apply_remote_start(connector, id_tag, charging_profile))
        return RemoteStartStopStatus.accepted

    def _remote_start_target(self, connector_id: int | None) -> ConnectorState | None:
        if connector_id is not None:
            candidates = [self.connectors[connector_id]] if connector_id in self.connectors else []
        else:
            # Prefer a connector where an EV already waits for authorisation.
            candidates = sorted(self.connectors.values(), key=lambda c: c.visit is None)
        for connector in candidates:
            visit = connector.visit
            if (
                connector.operative
                and connector.transaction is None
                and not connector.remote_start_pending
                and (visit is None or visit.state in (VisitState.PLUGGED, VisitState.AUTHORIZING))
            ):
                return connector
        return None

    def _apply_remote_start(
        self,
        connector: ConnectorState,
        id_tag: str,
        charging_profile: Mapping[str, Any] | None,
    ) -> None:
        connector.remote_start_pending = False
        if connector.transaction is not None:
            return
        visit = connector.visit
        if visit is None:
            now_s = self.clock.monotonic_s()
            visit = Visit(ev=self._ev_factory(), id_tag=id_tag, plugged_at_s=now_s)
            connector.visit = visit
        visit.id_tag = id_tag
        visit.remote = True
        visit.charging_profile = charging_profile
        self._refresh()
        self._spawn(self._authorize_and_start(connector, visit))

    def remote_stop(self, transaction_id: int) -> str:
        for connector in self.connectors.values():
            transaction = connector.transaction
            if transaction is not None and transaction.transaction_id == transaction_id:
                self._later(
                    lambda stopped=connector: self._stop_transaction(stopped, Reason.remote)
                )
                return RemoteStartStopStatus.accepted
        return RemoteStartStopStatus.rejected

    def reset(self, reset_type: str) -> str:
        self._later(lambda: self._reboot(reset_type))
        return ResetStatus.accepted

    def _reboot(self, reset_type: str) -> None:
        reason = Reason.hard_reset if reset_type == ResetType.hard else Reason.soft_reset
        for connector in self.connectors.values():
            self._stop_transaction(connector, reason)
        self._rebooting = True
        self._flush_on_disconnect = True
        self._disconnect.set()

    def change_availability(self, connector_id: int, availability: str) -> str:
        if connector_id != 0 and connector_id not in self.connectors:
            return AvailabilityStatus.rejected
        targets = (
            list(self.connectors.values()) if connector_id == 0 else [self.connectors[connector_id]]
        )
        operative = availability == AvailabilityType.operative
        scheduled = False
        for connector in targets:
            if operative:
                connector.operative = True
                connector.inoperative_scheduled = False
            elif connector.transaction is not None:
                connector.inoperative_scheduled = True
                scheduled = True
            else:
                connector.operative = False
        self._later(self._refresh)
        return AvailabilityStatus.scheduled if scheduled else AvailabilityStatus.accepted

    def change_configuration(self, key: str, value: str) -> str:
        status = self.config.change(key, value)
        if status is ConfigurationStatus.accepted:
            name = key.lower()
            now_s = self.clock.monotonic_s()
            if name == "heartbeatinterval":
                self._next_heartbeat_s = now_s + self.config.get_int("HeartbeatInterval")
            elif name == "metervaluesampleinterval":
                for connector in self.connectors.values():
                    connector.next_sample_s = now_s + self.config.get_int(key)
        return status.value

    def set_charging_profile(self, connector_id: int, data: Mapping[str, Any]) -> str:
        try:
            profile = profile_from_ocpp(connector_id, data, received_at=self.clock.now())
        except ProfileError as exc:
            logger.info("%s: charging profile rejected: %s", self.identity, exc)
            return ChargingProfileStatus.rejected
        connector = self.connectors.get(connector_id)
        transaction = connector.transaction if connector else None
        if self._refuses_as_decrease(profile, connector):
            logger.info("%s: refusing a lower charging profile", self.identity)
            return ChargingProfileStatus.rejected
        accepted = self.profiles.install(
            profile,
            transaction_active=transaction is not None,
            transaction_id=transaction.transaction_id if transaction else None,
        )
        if accepted:
            self._later(self._refresh)
        return ChargingProfileStatus.accepted if accepted else ChargingProfileStatus.rejected

    def _refuses_as_decrease(
        self, profile: ChargingProfile, connector: ConnectorState | None
    ) -> bool:
        """A station built to refuse decreases: a live limit below what it offers now."""
        if (
            not self.spec.refuses_decreases
            or profile.purpose is ChargingProfilePurposeType.tx_default_profile
        ):
            return False
        targets = [connector] if connector is not None else list(self.connectors.values())
        phases = max(1, min(c.offered_phases or 3 for c in targets)) if targets else 3
        limit_a = period_limit_a(profile, profile.periods[0], phases, self.profiles.voltage_v)
        return any(c.transaction is not None and limit_a < c.offered_a for c in targets)

    def clear_charging_profile(
        self,
        *,
        profile_id: int | None,
        connector_id: int | None,
        purpose: str | None,
        stack_level: int | None,
    ) -> str:
        cleared = self.profiles.clear(
            profile_id=profile_id,
            connector_id=connector_id,
            purpose=ChargingProfilePurposeType(purpose) if purpose else None,
            stack_level=stack_level,
        )
        if cleared:
            self._later(self._refresh)
        return (
            ClearChargingProfileStatus.accepted if cleared else ClearChargingProfileStatus.unknown
        )

    def composite_schedule(
        self, connector_id: int, duration_s: int, rate_unit: str | None
    ) -> tuple[str, dict[str, Any]] | None:
        """GetCompositeSchedule: (schedule start, chargingSchedule), or None to reject."""
        if connector_id != 0 and connector_id not in self.connectors:
            return None
        unit = ChargingRateUnitType(rate_unit) if rate_unit else ChargingRateUnitType.amps
        start = self.clock.now()
        periods = self.profiles.composite_schedule(
            self._contexts(), connector_id, start, duration_s, unit
        )
        schedule = {
            "duration": duration_s,
            "start_schedule": format_ocpp_time(start),
            "charging_rate_unit": unit.value,
            "charging_schedule_period": [
                {
                    "start_period": period.start_period_s,
                    "limit": period.limit,
                    **({"number_phases": period.number_phases} if period.number_phases else {}),
                }
                for period in periods
            ],
        }
        return format_ocpp_time(start), schedule

    def unlock_connector(self, connector_id: int) -> str:
        connector = self.connectors.get(connector_id)
        if connector is None:
            return UnlockStatus.not_supported
        self._later(lambda: self._unlock(connector))
        return UnlockStatus.unlocked

    def _unlock(self, connector: ConnectorState) -> None:
        self._stop_transaction(connector, Reason.unlock_command)
        if connector.visit is not None:
            self._unplug(connector)

    def trigger_message(self, requested: str, connector_id: int | None) -> str:
        if connector_id is not None and connector_id != 0 and connector_id not in self.connectors:
            return TriggerMessageStatus.rejected
        action = self._triggered_action(requested, connector_id)
        if action is None:
            return TriggerMessageStatus.not_implemented
        self._later(action)
        return TriggerMessageStatus.accepted

    def _triggered_action(
        self, requested: str, connector_id: int | None
    ) -> Callable[[], None] | None:
        """What a TriggerMessage asks for; ``connector_id`` None means every connector."""
        targets = (
            [self.connectors[connector_id]] if connector_id else list(self.connectors.values())
        )

        def boot() -> None:
            self._send_volatile(
                self._boot_payload, label="BootNotification", on_result=self._on_triggered_boot
            )

        def heartbeat() -> None:
            self._send_volatile(call.Heartbeat, label="Heartbeat")

        def statuses() -> None:
            if not connector_id:
                self._send_status(0, self._station_status)
            if connector_id != 0:
                for connector in targets:
                    self._send_status(connector.connector_id, connector.status)

        def meter_values() -> None:
            for connector in targets:
                self._send_meter_values(connector, ReadingContext.trigger)

        def diagnostics() -> None:
            self._send_volatile(
                lambda: call.DiagnosticsStatusNotification(status=DiagnosticsStatus.idle),
                label="Diagnostics",
            )

        def firmware() -> None:
            self._send_volatile(
                lambda: call.FirmwareStatusNotification(status=FirmwareStatus.idle),
                label="Firmware",
            )

        return {
            "BootNotification": boot,
            "Heartbeat": heartbeat,
            "StatusNotification": statuses,
            "MeterValues": meter_values,
            "DiagnosticsStatusNotification": diagnostics,
            "FirmwareStatusNotification": firmware,
        }.get(requested)

    def send_local_list(self, version: int, update_type: str, entries: list[dict[str, Any]]) -> str:
        if not self.config.get_bool("LocalAuthListEnabled"):
            return UpdateStatus.not_supported
        return self.auth.send_local_list(version, update_type, entries).value

    def local_list_version(self) -> int:
        if not self.config.get_bool("LocalAuthListEnabled"):
            return -1
        return self.auth.list_version

    def get_diagnostics(self, location: str) -> str:
        """Answer with a file name and report an upload (nothing is uploaded)."""
        file_name = f"diagnostics-{self.identity}-{self.clock.now():%Y%m%d%H%M%S}.log"
        self._later(lambda: self._spawn(self._report_diagnostics()))
        return file_name

    async def _report_diagnostics(self) -> None:
        for status in (DiagnosticsStatus.uploading, DiagnosticsStatus.uploaded):
            self._send_volatile(
                lambda status=status: call.DiagnosticsStatusNotification(status=status),
                label=f"Diagnostics {status}",
            )
            await self.clock.sleep(self.timing.diagnostics_upload_s)

    def update_firmware(self, location: str, retrieve_date: str) -> None:
        """Pretend to install new firmware, reporting each stage (no reboot)."""
        try:
            delay_s = (parse_ocpp_time(retrieve_date) - self.clock.now()).total_seconds()
        except ValueError:
            delay_s = 0.0
        self._later(lambda: self._spawn(self._report_firmware(max(0.0, delay_s))))

    async def _report_firmware(self, delay_s: float) -> None:
        await self.clock.sleep(delay_s)
        for status in (
            FirmwareStatus.downloading,
            FirmwareStatus.downloaded,
            FirmwareStatus.installing,
            FirmwareStatus.installed,
        ):
            self._send_volatile(
                lambda status=status: call.FirmwareStatusNotification(status=status),
                label=f"Firmware {status}",
            )
            await self.clock.sleep(self.timing.firmware_step_s)
