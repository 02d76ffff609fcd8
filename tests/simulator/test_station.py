"""A simulated station against a real (minimal) OCPP central system over WebSockets.

Simulated time runs ``SCALE`` times faster than the wall clock, so a
10-second sample interval takes 25 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ocpp.v16 import call

from apps.energy.allocator import PhaseWiring
from apps.simulator.engine import (
    ConnectorSpec,
    Endpoint,
    Ev,
    EvModel,
    ScaledClock,
    StationSim,
    StationSpec,
    StationTiming,
)
from apps.simulator.engine.clock import format_ocpp_time, parse_ocpp_time
from tests.simulator.csms import CentralSystem

SCALE = 40.0
THREE_PHASE_32A = EvModel("test 3×32 A", phases=3, max_current_a=32, battery_kwh=60)
SINGLE_PHASE_16A = EvModel("test 1×16 A", phases=1, max_current_a=16, battery_kwh=40)
FAST_TIMING = StationTiming(reconnect_max_s=8, response_timeout_wall_s=5)


def run(scenario: Callable[[], Awaitable[None]], timeout_s: float = 30) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(scenario(), timeout_s)

    asyncio.run(bounded())


def make_station(
    cs: CentralSystem,
    identity: str = "CP1",
    *,
    wiring: PhaseWiring = PhaseWiring.TRI123,
    connectors: int = 1,
    password: str | None = None,
    configuration: dict[str, str] | None = None,
    clock: ScaledClock | None = None,
) -> StationSim:
    spec = StationSpec(
        identity,
        tuple(ConnectorSpec(n, wiring, 32) for n in range(1, connectors + 1)),
        password=password,
        configuration={"MeterValueSampleInterval": "10", **(configuration or {})},
    )
    return StationSim(spec, Endpoint(cs.url), clock=clock or ScaledClock(SCALE), timing=FAST_TIMING)


@contextlib.asynccontextmanager
async def running(station: StationSim) -> AsyncIterator[StationSim]:
    task = asyncio.create_task(station.run())
    try:
        yield station
    finally:
        await station.shutdown()
        await asyncio.wait_for(task, 10)


def statuses(cs: CentralSystem, identity: str, connector_id: int) -> list[str]:
    return [
        p["status"]
        for p in cs.payloads(identity, "StatusNotification")
        if p["connector_id"] == connector_id
    ]


def sampled(payload: dict[str, Any], measurand: str) -> list[dict[str, Any]]:
    return [
        value
        for meter_value in payload["meter_value"]
        for value in meter_value["sampled_value"]
        if value.get("measurand") == measurand
    ]


def offered_a(payload: dict[str, Any]) -> float:
    return float(sampled(payload, "Current.Offered")[0]["value"])


def l1_current_a(payload: dict[str, Any]) -> float:
    return float(next(v["value"] for v in sampled(payload, "Current.Import") if v["phase"] == "L1"))


def tx_default_profile(limit_a: float, stack_level: int = 0) -> dict[str, Any]:
    return {
        "charging_profile_id": 1,
        "stack_level": stack_level,
        "charging_profile_purpose": "TxDefaultProfile",
        "charging_profile_kind": "Relative",
        "charging_schedule": {
            "charging_rate_unit": "A",
            "charging_schedule_period": [{"start_period": 0, "limit": limit_a}],
        },
    }


def test_boot_pending_then_accepted() -> None:
    async def scenario() -> None:
        async with CentralSystem(
            boot_statuses=("Pending", "Pending", "Accepted"), retry_s=20
        ) as cs:
            station = make_station(cs)
            async with running(station):
                await cs.wait_for(lambda: station.accepted, what="acceptance")
                await cs.wait_for(lambda: statuses(cs, "CP1", 1), what="statuses")
            actions = [m.action for m in cs.messages("CP1")]
            assert actions[:3] == ["BootNotification"] * 3
            # Nothing but BootNotification while pending, then the state of every connector.
            assert actions[3:5] == ["StatusNotification", "StatusNotification"]
            assert [p["connector_id"] for p in cs.payloads("CP1", "StatusNotification")][:2] == [
                0,
                1,
            ]
            assert station.config.get_int("HeartbeatInterval") == 300

    run(scenario)


def test_full_session_reports_per_phase_current_and_a_complete_stop() -> None:
    async def scenario() -> None:
        async with CentralSystem() as cs:
            station = make_station(cs, wiring=PhaseWiring.TRI231)
            async with running(station):
                await cs.wait_for(lambda: station.accepted)
                station.arrive(Ev(SINGLE_PHASE_16A, 0.3), "TAG-1", dwell_s=60)
                await cs.wait_for(
                    lambda: (
                        statuses(cs, "CP1", 1)[-1:] == ["Available"]
                        and cs.payloads("CP1", "StopTransaction")
                    ),
                    what="session end",
                )

            assert statuses(cs, "CP1", 1) == [
                "Available",
                "Preparing",
                "Charging",
                "Finishing",
                "Available",
            ]
            assert cs.payloads("CP1", "Authorize") == [{"id_tag": "TAG-1"}]
            [start] = cs.payloads("CP1", "StartTransaction")
            [stop] = cs.payloads("CP1", "StopTransaction")
            meter_values = cs.payloads("CP1", "MeterValues")
            assert 4 <= len(meter_values) <= 7
            assert {mv["transaction_id"] for mv in meter_values} == {1001}
            sample = meter_values[0]
            # A single-phase EV on the station's L1; the station reports its own phases.
            currents = {v["phase"]: float(v["value"]) for v in sampled(sample, "Current.Import")}
            assert currents == {"L1": 16.0, "L2": 0.0, "L3": 0.0}
            assert float(sampled(sample, "Power.Active.Import")[0]["value"]) == 16 * 230
            assert offered_a(sample) == 32.0
            registers = [
                float(sampled(mv, "Energy.Active.Import.Register")[0]["value"])
                for mv in meter_values
            ]
            assert registers == sorted(registers)
            # About one minute at 3.68 kW.
            energy_wh = stop["meter_stop"] - start["meter_start"]
            assert 50 <= energy_wh <= 75
            assert stop["transaction_id"] == 1001
            assert stop["reason"] == "Local"
            assert [v["sampled_value"][0]["context"] for v in stop["transaction_data"]] == [
                "Transaction.Begin",
                "Transaction.End",
            ]
            assert station.phase_currents_a() == (0.0, 0.0, 0.0)

    run(scenario)


def test_follows_tx_profile_then_falls_back_to_tx_default_when_it_expires() -> None:
    async def scenario() -> None:
        clock = ScaledClock(SCALE)
        async with CentralSystem() as cs:
            station = make_station(cs, clock=clock)
            async with running(station):
                await cs.wait_for(lambda: station.accepted)
                result = await cs.call(
                    "CP1",
                    call.SetChargingProfile(
                        connector_id=0, cs_charging_profiles=tx_default_profile(10)
                    ),
                )
                assert result.status == "Accepted"
                station.arrive(Ev(THREE_PHASE_32A, 0.2), "TAG-1")
                await cs.wait_for(lambda: cs.payloads("CP1", "MeterValues"), what="a sample")
                assert offered_a(cs.payloads("CP1", "MeterValues")[-1]) == 10.0
                assert station.phase_currents_a() == (10.0, 10.0, 10.0)

                transaction_id = cs.payloads("CP1", "MeterValues")[-1]["transaction_id"]
                now = clock.now()
                tx_profile = {
                    "charging_profile_id": 7,
                    "stack_level": 1,
                    "charging_profile_purpose": "TxProfile",
                    "charging_profile_kind": "Absolute",
                    "transaction_id": transaction_id,
                    "valid_to": format_ocpp_time(now + timedelta(seconds=60)),
                    "charging_schedule": {
                        "charging_rate_unit": "A",
                        "start_schedule": format_ocpp_time(now),
                        "charging_schedule_period": [{"start_period": 0, "limit": 20}],
                    },
                }
                result = await cs.call(
                    "CP1", call.SetChargingProfile(connector_id=1, cs_charging_profiles=tx_profile)
                )
                assert result.status == "Accepted"
                await cs.wait_for(lambda: station.phase_currents_a() == (20.0, 20.0, 20.0))

                composite = await cs.call(
                    "CP1", call.GetCompositeSchedule(connector_id=1, duration=120)
                )
                assert composite.status == "Accepted"
                periods = composite.charging_schedule["charging_schedule_period"]
                assert [float(p["limit"]) for p in periods] == [20.0, 10.0]
                assert 55 <= periods[1]["start_period"] <= 61

                await cs.wait_for(
                    lambda: offered_a(cs.payloads("CP1", "MeterValues")[-1]) == 20.0,
                    what="the TxProfile limit",
                )
                seen = len(cs.payloads("CP1", "MeterValues"))
                await cs.wait_for(
                    lambda: offered_a(cs.payloads("CP1", "MeterValues")[-1]) == 10.0,
                    what="the fallback limit",
                )
                fallback = cs.payloads("CP1", "MeterValues")[-1]
                assert l1_current_a(fallback) == 10.0
                expired_at = parse_ocpp_time(tx_profile["valid_to"])
                assert parse_ocpp_time(fallback["meter_value"][0]["timestamp"]) >= expired_at
                assert len(cs.payloads("CP1", "MeterValues")) > seen

    run(scenario)


def test_clearing_tx_defaults_by_purpose_removes_a_previous_central_systems_profiles() -> None:
    """What evce sends at boot: clear every TxDefaultProfile, then install its fallback."""

    async def scenario() -> None:
        async with CentralSystem() as cs:
            station = make_station(cs, connectors=2)
            async with running(station):
                await cs.wait_for(lambda: station.accepted)
                # Left by a previous central system, above evce's stack level 0.
                for connector_id, stack_level in ((0, 5), (1, 3)):
                    foreign = {**tx_default_profile(32, stack_level), "charging_profile_id": 90}
                    foreign["charging_profile_id"] += connector_id
                    result = await cs.call(
                        "CP1",
                        call.SetChargingProfile(
                            connector_id=connector_id, cs_charging_profiles=foreign
                        ),
                    )
                    assert result.status == "Accepted"
                cleared = await cs.call(
                    "CP1", call.ClearChargingProfile(charging_profile_purpose="TxDefaultProfile")
                )
                assert cleared.status == "Accepted"
                for connector_id in (1, 2):
                    fallback = {**tx_default_profile(10), "charging_profile_id": 1000}
                    fallback["charging_profile_id"] += connector_id
                    result = await cs.call(
                        "CP1",
                        call.SetChargingProfile(
                            connector_id=connector_id, cs_charging_profiles=fallback
                        ),
                    )
                    assert result.status == "Accepted"
                station.arrive(Ev(THREE_PHASE_32A, 0.2), "TAG-1", connector_id=1)
                await cs.wait_for(
                    lambda: station.phase_currents_a() == (10.0, 10.0, 10.0),
                    what="the fallback, not the 32 A left behind",
                )
                again = await cs.call(
                    "CP1", call.ClearChargingProfile(charging_profile_purpose="TxDefaultProfile")
                )
                assert again.status == "Accepted"  # evce's own fallbacks, this time
                nothing = await cs.call(
                    "CP1", call.ClearChargingProfile(charging_profile_purpose="TxDefaultProfile")
                )
                assert nothing.status == "Unknown"

    run(scenario)


def test_limit_below_6_a_suspends_the_ev() -> None:
    async def scenario() -> None:
        async with CentralSystem() as cs:
            station = make_station(cs)
            async with running(station):
                await cs.wait_for(lambda: station.accepted)
                station.arrive(Ev(THREE_PHASE_32A, 0.2), "TAG-1")
                await cs.wait_for(lambda: "Charging" in statuses(cs, "CP1", 1))
                await cs.call(
                    "CP1",
                    call.SetChargingProfile(
                        connector_id=1, cs_charging_profiles=tx_default_profile(5)
                    ),
                )
                await cs.wait_for(lambda: statuses(cs, "CP1", 1)[-1] == "SuspendedEVSE")
                assert station.phase_currents_a() == (0.0, 0.0, 0.0)
                await cs.call(
                    "CP1",
                    call.ClearChargingProfile(charging_profile_purpose="TxDefaultProfile"),
                )
                await cs.wait_for(lambda: statuses(cs, "CP1", 1)[-1] == "Charging")

    run(scenario)


def test_remote_start_and_remote_stop() -> None:
    async def scenario() -> None:
        async with CentralSystem() as cs:
            station = make_station(cs, connectors=2)
            async with running(station):
                await cs.wait_for(lambda: station.accepted)
                result = await cs.call(
                    "CP1", call.RemoteStartTransaction(id_tag="APP-7", connector_id=2)
                )
                assert result.status == "Accepted"
                await cs.wait_for(lambda: cs.payloads("CP1", "StartTransaction"))
                [start] = cs.payloads("CP1", "StartTransaction")
                assert (start["connector_id"], start["id_tag"]) == (2, "APP-7")
                assert cs.payloads("CP1", "Authorize") == [{"id_tag": "APP-7"}]
                await cs.wait_for(lambda: station.connectors[2].transaction.transaction_id)

                again = await cs.call(
                    "CP1", call.RemoteStartTransaction(id_tag="APP-8", connector_id=2)
                )
                assert again.status == "Rejected"
                unknown = await cs.call("CP1", call.RemoteStopTransaction(transaction_id=999))
                assert unknown.status == "Rejected"

                result = await cs.call("CP1", call.RemoteStopTransaction(transaction_id=1001))
                assert result.status == "Accepted"
                await cs.wait_for(lambda: cs.payloads("CP1", "StopTransaction"))
                [stop] = cs.payloads("CP1", "StopTransaction")
                assert (stop["transaction_id"], stop["reason"]) == (1001, "Remote")
                await cs.wait_for(lambda: statuses(cs, "CP1", 2)[-1] == "Finishing")
                assert statuses(cs, "CP1", 1) == ["Available"]

    run(scenario)


def test_rejected_card_starts_nothing() -> None:
    async def scenario() -> None:
        async with CentralSystem(rejected_tags=frozenset({"LOST"})) as cs:
            station = make_station(cs)
            async with running(station):
                await cs.wait_for(lambda: station.accepted)
                station.arrive(Ev(THREE_PHASE_32A, 0.2), "LOST")
                await cs.wait_for(
                    lambda: (
                        statuses(cs, "CP1", 1)[-1:] == ["Available"]
                        and len(statuses(cs, "CP1", 1)) > 1
                    )
                )
            assert statuses(cs, "CP1", 1) == ["Available", "Preparing", "Available"]
            assert cs.payloads("CP1", "StartTransaction") == []

    run(scenario)


@pytest.mark.parametrize(("reset_type", "reason"), [("Soft", "SoftReset"), ("Hard", "HardReset")])
def test_reset_stops_the_session_and_reboots(reset_type: str, reason: str) -> None:
    async def scenario() -> None:
        async with CentralSystem() as cs:
            station = make_station(cs)
            async with running(station):
                await cs.wait_for(lambda: station.accepted)
                station.arrive(Ev(THREE_PHASE_32A, 0.2), "TAG-1")
                await cs.wait_for(lambda: cs.payloads("CP1", "MeterValues"))
                result = await cs.call("CP1", call.Reset(type=reset_type))
                assert result.status == "Accepted"
                await cs.wait_for(lambda: len(cs.payloads("CP1", "BootNotification")) == 2)
                await cs.wait_for(lambda: station.accepted)
            stops = cs.messages("CP1", "StopTransaction")
            assert [(m.payload["reason"], m.connection) for m in stops] == [(reason, 1)]
            boots = cs.messages("CP1", "BootNotification")
            assert [m.connection for m in boots] == [1, 2]
            assert station.connection_count == 2

    run(scenario)


def test_messages_buffered_while_disconnected_are_delivered_in_order() -> None:
    async def scenario() -> None:
        async with CentralSystem() as cs:
            station = make_station(cs)
            async with running(station):
                await cs.wait_for(lambda: station.accepted)
                station.arrive(Ev(THREE_PHASE_32A, 0.2), "TAG-1", dwell_s=80)
                await cs.wait_for(lambda: cs.payloads("CP1", "MeterValues"))
                cs.refuse_connections = True
                await cs.drop("CP1")
                await cs.wait_for(lambda: not station.connected, what="disconnection")
                # Offline: the EV keeps charging, samples and its stop are kept.
                await cs.wait_for(lambda: station.sessions_stopped == 1, what="offline stop")
                assert station.outbox.durable_count >= 4
                assert cs.refused_count >= 1
                cs.refuse_connections = False
                await cs.wait_for(lambda: cs.payloads("CP1", "StopTransaction"), what="delivery")

            later = [m for m in cs.received if m.connection == 2]
            actions = [m.action for m in later]
            assert actions[0] == "BootNotification"
            transaction_messages = [
                m for m in cs.messages("CP1") if m.action in ("MeterValues", "StopTransaction")
            ]
            assert transaction_messages[-1].action == "StopTransaction"
            buffered = [m for m in transaction_messages if m.connection == 2]
            assert len(buffered) >= 4
            # Delivered in the order they were produced, all for the same transaction.
            timestamps = [
                parse_ocpp_time(
                    m.payload["meter_value"][0]["timestamp"]
                    if m.action == "MeterValues"
                    else m.payload["timestamp"]
                )
                for m in transaction_messages
            ]
            assert timestamps == sorted(timestamps)
            assert {m.payload["transaction_id"] for m in transaction_messages} == {1001}
            registers = [
                float(sampled(m.payload, "Energy.Active.Import.Register")[0]["value"])
                for m in transaction_messages
                if m.action == "MeterValues"
            ]
            assert registers == sorted(registers)

    run(scenario)


def test_transaction_started_offline_gets_its_id_after_reconnection() -> None:
    async def scenario() -> None:
        async with CentralSystem() as cs:
            station = make_station(cs, configuration={"AllowOfflineTxForUnknownId": "true"})
            async with running(station):
                await cs.wait_for(lambda: station.accepted)
                station.simulate_outage(60)
                await cs.wait_for(lambda: not station.connected)
                station.arrive(Ev(THREE_PHASE_32A, 0.2), "UNKNOWN-TAG")
                await cs.wait_for(lambda: station.connectors[1].transaction is not None)
                assert station.connectors[1].transaction.transaction_id is None
                await cs.wait_for(lambda: cs.payloads("CP1", "MeterValues"), what="delivery")
                assert station.connectors[1].transaction.transaction_id == 1001

            start = cs.messages("CP1", "StartTransaction")[0]
            assert start.connection == 2
            assert cs.payloads("CP1", "Authorize") == []
            meter_values = cs.messages("CP1", "MeterValues")
            assert all(m.payload["transaction_id"] == 1001 for m in meter_values)
            order = [m.action for m in cs.messages("CP1") if m.connection == 2]
            assert order.index("StartTransaction") < order.index("MeterValues")

    run(scenario)


def test_basic_auth_wrong_password_is_refused_and_the_right_one_connects() -> None:
    async def scenario() -> None:
        async with CentralSystem(passwords={"CP1": "correct horse battery"}) as cs:
            wrong = make_station(cs, password="wrong password here")
            async with running(wrong):
                await cs.wait_for(lambda: cs.refused_count >= 1, what="a refusal")
                assert not wrong.connected
                assert "401" in (wrong.last_error or "")
            right = make_station(cs, password="correct horse battery")
            async with running(right):
                await cs.wait_for(lambda: right.accepted)
            known, _ = right.config.read(["AuthorizationKey"])
            assert known == []  # write-only

    run(scenario)


def test_configuration_and_other_commands_round_trip() -> None:
    async def scenario() -> None:
        async with CentralSystem() as cs:
            station = make_station(cs, connectors=2, wiring=PhaseWiring.TRI312)
            async with running(station):
                await cs.wait_for(lambda: station.accepted)

                async def ask(payload: Any) -> Any:
                    return await cs.call("CP1", payload)

                result = await ask(
                    call.ChangeConfiguration(key="MeterValueSampleInterval", value="30")
                )
                assert result.status == "Accepted"
                assert station.config.get_int("MeterValueSampleInterval") == 30
                result = await ask(call.ChangeConfiguration(key="NoSuchKey", value="1"))
                assert result.status == "NotSupported"
                result = await ask(call.ChangeConfiguration(key="NumberOfConnectors", value="4"))
                assert result.status == "Rejected"
                result = await ask(call.ChangeConfiguration(key="HeartbeatInterval", value="abc"))
                assert result.status == "Rejected"

                result = await ask(call.GetConfiguration(key=["MeterValueSampleInterval", "Nope"]))
                assert result.configuration_key == [
                    {"key": "MeterValueSampleInterval", "readonly": False, "value": "30"}
                ]
                assert result.unknown_key == ["Nope"]
                everything = await ask(call.GetConfiguration())
                keys = {item["key"]: item["value"] for item in everything.configuration_key}
                assert keys["NumberOfConnectors"] == "2"
                assert keys["ConnectorPhaseRotation"] == "1.TRS,2.TRS"
                assert "AuthorizationKey" not in keys

                result = await ask(
                    call.TriggerMessage(requested_message="StatusNotification", connector_id=2)
                )
                assert result.status == "Accepted"
                await cs.wait_for(lambda: len(statuses(cs, "CP1", 2)) == 2)
                result = await ask(call.TriggerMessage(requested_message="Heartbeat"))
                assert result.status == "Accepted"
                await cs.wait_for(lambda: cs.payloads("CP1", "Heartbeat"))
                result = await ask(
                    call.TriggerMessage(requested_message="MeterValues", connector_id=1)
                )
                await cs.wait_for(lambda: cs.payloads("CP1", "MeterValues"))
                assert "transaction_id" not in cs.payloads("CP1", "MeterValues")[0]
                result = await ask(call.TriggerMessage(requested_message="BootNotification"))
                await cs.wait_for(lambda: len(cs.payloads("CP1", "BootNotification")) == 2)

                result = await ask(call.ChangeAvailability(connector_id=1, type="Inoperative"))
                assert result.status == "Accepted"
                await cs.wait_for(lambda: statuses(cs, "CP1", 1)[-1] == "Unavailable")
                result = await ask(call.ChangeAvailability(connector_id=0, type="Inoperative"))
                await cs.wait_for(lambda: statuses(cs, "CP1", 0)[-1] == "Unavailable")
                assert station.arrive(Ev(THREE_PHASE_32A, 0.5), "TAG") is None
                await ask(call.ChangeAvailability(connector_id=0, type="Operative"))
                await cs.wait_for(lambda: statuses(cs, "CP1", 1)[-1] == "Available")

                station.arrive(Ev(THREE_PHASE_32A, 0.5), "TAG", connector_id=2)
                await cs.wait_for(lambda: "Charging" in statuses(cs, "CP1", 2))
                result = await ask(call.ChangeAvailability(connector_id=2, type="Inoperative"))
                assert result.status == "Scheduled"
                result = await ask(call.UnlockConnector(connector_id=2))
                assert result.status == "Unlocked"
                await cs.wait_for(lambda: cs.payloads("CP1", "StopTransaction"))
                assert cs.payloads("CP1", "StopTransaction")[0]["reason"] == "UnlockCommand"
                await cs.wait_for(lambda: statuses(cs, "CP1", 2)[-1] == "Unavailable")

                bad_profile = tx_default_profile(16)
                bad_profile["charging_profile_purpose"] = "ChargePointMaxProfile"
                result = await ask(
                    call.SetChargingProfile(connector_id=1, cs_charging_profiles=bad_profile)
                )
                assert result.status == "Rejected"
                tx_only = {**tx_default_profile(16), "charging_profile_purpose": "TxProfile"}
                result = await ask(
                    call.SetChargingProfile(connector_id=1, cs_charging_profiles=tx_only)
                )
                assert result.status == "Rejected"  # no transaction on that connector
                result = await ask(call.ClearChargingProfile(id=12345))
                assert result.status == "Unknown"
                station_max = {
                    **tx_default_profile(40),
                    "charging_profile_purpose": "ChargePointMaxProfile",
                }
                station_max["charging_schedule"]["charging_rate_unit"] = "W"
                station_max["charging_schedule"]["charging_schedule_period"][0]["limit"] = 22080
                result = await ask(
                    call.SetChargingProfile(connector_id=0, cs_charging_profiles=station_max)
                )
                assert result.status == "Accepted"
                composite = await ask(call.GetCompositeSchedule(connector_id=0, duration=600))
                assert composite.charging_schedule["charging_schedule_period"] == [
                    {"start_period": 0, "limit": 32}
                ]
                result = await ask(call.ClearChargingProfile(id=1))
                assert result.status == "Accepted"

                result = await ask(
                    call.SendLocalList(
                        list_version=3,
                        update_type="Full",
                        local_authorization_list=[
                            {"id_tag": "A1", "id_tag_info": {"status": "Accepted"}}
                        ],
                    )
                )
                assert result.status == "Accepted"
                assert (await ask(call.GetLocalListVersion())).list_version == 3
                result = await ask(call.SendLocalList(list_version=2, update_type="Differential"))
                assert result.status == "VersionMismatch"
                assert (await ask(call.ClearCache())).status == "Accepted"
                result = await ask(call.DataTransfer(vendor_id="com.example"))
                assert result.status == "UnknownVendorId"
                result = await ask(call.GetDiagnostics(location="ftp://example.invalid/"))
                assert result.file_name.startswith("diagnostics-CP1-")
                await cs.wait_for(
                    lambda: len(cs.payloads("CP1", "DiagnosticsStatusNotification")) == 2
                )
                assert [
                    p["status"] for p in cs.payloads("CP1", "DiagnosticsStatusNotification")
                ] == [
                    "Uploading",
                    "Uploaded",
                ]

    run(scenario, timeout_s=40)


def _self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "evce test")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def test_wss_with_the_central_systems_ca_and_basic_auth(tmp_path: Path) -> None:
    pytest.importorskip("cryptography")
    cert_file, key_file = _self_signed_certificate(tmp_path)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert_file, key_file)

    async def scenario() -> None:
        async with CentralSystem(
            ssl_context=server_context, passwords={"CP1": "s3cret-key-16chars"}
        ) as cs:
            assert cs.url.startswith("wss://")
            untrusted = StationSim(
                StationSpec("CP1", password="s3cret-key-16chars"),
                Endpoint(cs.url),
                clock=ScaledClock(SCALE),
                timing=FAST_TIMING,
            )
            async with running(untrusted):
                await cs.wait_for(lambda: untrusted.last_error, what="a TLS failure")
                assert "CERTIFICATE_VERIFY_FAILED" in untrusted.last_error
            trusted = StationSim(
                StationSpec("CP1", password="s3cret-key-16chars"),
                Endpoint(cs.url, ca_file=str(cert_file)),
                clock=ScaledClock(SCALE),
                timing=FAST_TIMING,
            )
            async with running(trusted):
                await cs.wait_for(lambda: trusted.accepted, what="acceptance over TLS")

    run(scenario)
