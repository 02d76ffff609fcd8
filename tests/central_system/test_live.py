"""End to end: real OCPP clients over real WebSockets against a running evce.

The stack is the one ``make run`` starts (daphne on HTTP, OCPP and TLS ports,
a Celery worker, beat, Redis); commands are issued by the worker process.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import websockets
from celery import Celery
from ocpp.exceptions import SecurityError

from tests.central_system.ocpp_client import connected
from tests.conftest import free_port
from tests.e2e.stack import Stack, start_stack

pytestmark = pytest.mark.e2e

KEY_P1 = "profile-one-secret-key"
KEY_P2 = "profile-two-secret-key"
SETUP = f"""
from apps.rfid.models import Card
from apps.stations.models import Station
from apps.zones.models import Zone

zone = Zone.objects.create(name="Live zone", max_current_a=100)
Card.objects.create(id_tag="CARD-OK")
Card.objects.create(id_tag="CARD-BLOCKED", authorized=False)
for identity in ["LIVE-CP1", "LIVE-CP2", "LIVE-CP3", "LIVE-CP4"]:
    Station.objects.create(identity=identity, name=identity, state="installed", zone=zone)
for identity, profile, key in [("LIVE-P1", 1, {KEY_P1!r}), ("LIVE-P2", 2, {KEY_P2!r})]:
    station = Station(identity=identity, name=identity, state="installed", zone=zone,
                      security_profile=profile)
    station.set_authorization_key(key)
    station.save()
print("ready")
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tls_port = free_port()
    stack = start_stack(
        tmp_path_factory.mktemp("evce-ocpp"),
        demo=False,
        extra_env={"EVCE_OCPP_TLS": "1", "EVCE_OCPP_TLS_PORT": str(tls_port)},
    )
    stack.tls_port = tls_port
    try:
        done = stack.manage("shell", "-c", SETUP)
        assert "ready" in done.stdout, done.stdout + done.stderr
        yield stack
    finally:
        stack.stop()


def ocpp_url(stack: Stack) -> str:
    return f"ws://127.0.0.1:{stack.ocpp_port}/ocpp"


def query(stack: Stack, sql: str, *params) -> list[tuple]:
    return stack.query(sql, *params)


def as_json(value):
    return json.loads(value) if isinstance(value, str) else value


async def wait_until(predicate, timeout_s: float = 20, what: str = "condition"):
    async with asyncio.timeout(timeout_s):
        while True:
            result = await asyncio.to_thread(predicate)
            if result:
                return result
            await asyncio.sleep(0.2)


def celery_app(stack: Stack) -> Celery:
    broker = stack.env.get("REDIS_URL") or (
        f"redis+socket://{Path(stack.env['EVCE_DATA_DIR']) / 'redis.sock'}"
    )
    app = Celery("evce-live-test", broker=broker)
    app.conf.task_serializer = "json"
    return app


def send_command(app: Celery, identity: str, action: str, payload: dict, timeout_s=15) -> str:
    request_id = str(uuid.uuid4())
    app.send_task(
        "apps.central_system.tasks.station_command_task",
        args=[identity, action, payload],
        kwargs={"request_id": request_id, "timeout_s": timeout_s},
    )
    return request_id


async def command_outcome(stack: Stack, request_id: str, timeout_s: float = 40) -> tuple:
    def finished():
        rows = query(
            stack,
            "SELECT status, response, error_code FROM central_system_commandresult "
            "WHERE request_id = ? AND finished_at IS NOT NULL",
            request_id
            if stack.env.get("DATABASE_URL", "").startswith("postgres")
            else uuid.UUID(request_id).hex,
        )
        return rows[0] if rows else None

    status, response, error_code = await wait_until(finished, timeout_s)
    return status, as_json(response), error_code


def test_boot_pending_then_install_then_accepted(stack):
    async def scenario():
        async with connected(ocpp_url(stack), "LIVE-NEW1") as cp:
            assert (await cp.boot()).status == "Pending"
            with pytest.raises(SecurityError):
                await cp.call(cp._call.Heartbeat(), suppress=False)
            installed = await asyncio.to_thread(
                stack.manage,
                "shell",
                "-c",
                "from apps.stations.models import Station; from apps.zones.models import Zone; "
                "from apps.stations.services import station_install; "
                "station_install(Station.objects.get(identity='LIVE-NEW1'), name='Bay new', "
                "zone=Zone.objects.get(name='Live zone')); print('installed')",
            )
            assert "installed" in installed.stdout, installed.stderr
            # evce asks the connected station to boot again at once.
            trigger = await cp.wait_for("TriggerMessage")
            assert trigger[0]["requested_message"] == "BootNotification"
            boot = await cp.boot()
            assert boot.status == "Accepted" and boot.interval == 60
            await cp.wait_for("ChangeConfiguration", 3)
            assert cp.configuration["HeartbeatInterval"] == "60"
            assert cp.configuration["MeterValueSampleInterval"] == "10"
            assert cp.configuration["MeterValuesSampledData"] == (
                "Current.Import,Power.Active.Import,Energy.Active.Import.Register,Current.Offered"
            )
            heartbeat = await cp.call(cp._call.Heartbeat())
            assert heartbeat.current_time.endswith("Z")

    asyncio.run(scenario())
    [(vendor, model, state)] = query(
        stack, "SELECT vendor, model, state FROM stations_station WHERE identity = 'LIVE-NEW1'"
    )
    assert (vendor, model, state) == ("Acme", "Wallbox 22", "installed")


def sample(at: datetime, *, amps: tuple[float, float, float], kw: float, kwh: float) -> dict:
    values = [
        {"measurand": "Current.Import", "phase": phase, "unit": "A", "value": str(a)}
        for phase, a in zip(("L1", "L2", "L3"), amps, strict=True)
    ]
    values += [
        {"measurand": "Power.Active.Import", "unit": "kW", "value": str(kw)},
        {"measurand": "Energy.Active.Import.Register", "unit": "kWh", "value": str(kwh)},
        {"measurand": "Current.Offered", "unit": "A", "value": "32"},
    ]
    return {"timestamp": at.isoformat().replace("+00:00", "Z"), "sampledValue": values}


def test_full_session_gives_a_correct_cdr(stack):
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)

    def ts(minutes: float) -> str:
        return (t0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")

    async def scenario():
        async with connected(ocpp_url(stack), "LIVE-CP1") as cp:
            assert (await cp.boot()).status == "Accepted"
            c = cp._call
            assert (await cp.call(c.Authorize(id_tag="CARD-OK"))).id_tag_info[
                "status"
            ] == "Accepted"
            assert (await cp.call(c.Authorize(id_tag="CARD-BLOCKED"))).id_tag_info[
                "status"
            ] == "Blocked"
            assert (await cp.call(c.Authorize(id_tag="NOBODY"))).id_tag_info["status"] == "Invalid"
            await cp.call(c.StatusNotification(1, "NoError", "Preparing", timestamp=ts(0)))
            started = await cp.call(
                c.StartTransaction(
                    connector_id=1, id_tag="CARD-OK", meter_start=120_000, timestamp=ts(0)
                )
            )
            assert started.id_tag_info["status"] == "Accepted"
            tx = started.transaction_id
            await cp.call(c.StatusNotification(1, "NoError", "Charging", timestamp=ts(0)))
            await cp.call(
                c.MeterValues(
                    connector_id=1,
                    transaction_id=tx,
                    meter_value=[
                        sample(
                            t0 + timedelta(minutes=10), amps=(16, 15.8, 16.1), kw=11.0, kwh=121.8
                        )
                    ],
                )
            )
            await cp.call(c.StatusNotification(1, "NoError", "SuspendedEV", timestamp=ts(45)))
            stopped = await cp.call(
                c.StopTransaction(
                    meter_stop=128_500,
                    timestamp=ts(60),
                    transaction_id=tx,
                    reason="EVDisconnected",
                    id_tag="CARD-OK",
                    transaction_data=[
                        sample(t0 + timedelta(minutes=60), amps=(0, 0, 0), kw=0, kwh=128.5)
                    ],
                )
            )
            assert stopped.id_tag_info["status"] == "Accepted"
            await cp.call(c.StatusNotification(1, "NoError", "Available", timestamp=ts(61)))
            return tx

    tx = asyncio.run(scenario())
    [row] = query(
        stack,
        "SELECT id_tag, connector_id, meter_start_wh, meter_stop_wh, energy_wh, "
        "charging_duration_s, stop_reason, status, phases_used, station_name "
        "FROM stations_transaction WHERE id = ?",
        tx,
    )
    assert row == (
        "CARD-OK",
        1,
        120_000,
        128_500,
        8_500,
        45 * 60,
        "EVDisconnected",
        "Finished",
        3,
        "LIVE-CP1",
    )
    [(samples, power_w, energy_wh)] = query(
        stack,
        "SELECT COUNT(*), MAX(power_w), MAX(energy_wh) FROM stations_metersample "
        "WHERE transaction_id = ?",
        tx,
    )
    assert (samples, power_w, energy_wh) == (2, 11_000, 128_500)


ROUND_TRIPS = [
    ("RemoteStartTransaction", {"idTag": "CARD-OK", "connectorId": 1}, {"status": "Accepted"}),
    ("RemoteStopTransaction", {"transactionId": 77}, {"status": "Accepted"}),
    ("Reset", {"type": "Soft"}, {"status": "Accepted"}),
    ("Reset", {"type": "Hard"}, {"status": "Accepted"}),
    ("UnlockConnector", {"connectorId": 1}, {"status": "Unlocked"}),
    ("ChangeAvailability", {"connectorId": 0, "type": "Inoperative"}, {"status": "Accepted"}),
    # A key evce never sets by itself, so its own configuration pushes cannot interleave.
    ("ChangeConfiguration", {"key": "ConnectionTimeOut", "value": "120"}, {"status": "Accepted"}),
    (
        "GetConfiguration",
        {"key": ["ConnectionTimeOut", "NoSuchKey"]},
        {
            "configurationKey": [{"key": "ConnectionTimeOut", "readonly": False, "value": "120"}],
            "unknownKey": ["NoSuchKey"],
        },
    ),
    (
        "TriggerMessage",
        {"requestedMessage": "StatusNotification", "connectorId": 1},
        {"status": "Accepted"},
    ),
    (
        "SetChargingProfile",
        {
            "connectorId": 1,
            "csChargingProfiles": {
                "chargingProfileId": 7,
                "stackLevel": 2,
                "chargingProfilePurpose": "TxDefaultProfile",
                "chargingProfileKind": "Absolute",
                "chargingSchedule": {
                    "chargingRateUnit": "A",
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 13.5}],
                },
            },
        },
        {"status": "Accepted"},
    ),
]


def test_commands_issued_from_a_celery_worker_round_trip(stack):
    app = celery_app(stack)

    async def scenario():
        async with connected(ocpp_url(stack), "LIVE-CP2") as cp:
            assert (await cp.boot()).status == "Accepted"
            await cp.wait_for("ChangeConfiguration", 3)
            # One after the other: two worker processes would run queued tasks in parallel.
            outcomes = []
            for action, payload, _ in ROUND_TRIPS:
                outcomes.append(
                    await command_outcome(stack, send_command(app, "LIVE-CP2", action, payload))
                )
            offline = await command_outcome(
                stack, send_command(app, "LIVE-NOT-CONNECTED", "Reset", {"type": "Soft"})
            )
            return outcomes, offline, cp.received

    outcomes, offline, received = asyncio.run(scenario())
    for (action, _payload, expected), (status, response, _code) in zip(
        ROUND_TRIPS, outcomes, strict=True
    ):
        assert (status, response) == ("answered", expected), action
    assert [p["type"] for p in received["Reset"]] == ["Soft", "Hard"]
    # (The load manager may send its own profiles meanwhile: find ours.)
    [profile] = [
        p["cs_charging_profiles"]
        for p in received["SetChargingProfile"]
        if p["cs_charging_profiles"]["charging_profile_id"] == 7
    ]
    assert profile["charging_schedule"]["charging_schedule_period"][0]["limit"] == 13.5
    assert received["RemoteStartTransaction"] == [{"id_tag": "CARD-OK", "connector_id": 1}]
    assert offline[0] == "offline"


def test_reconnection_replaces_the_old_socket(stack):
    app = celery_app(stack)

    async def scenario():
        async with connected(ocpp_url(stack), "LIVE-CP3") as old:
            await old.boot()
            async with connected(ocpp_url(stack), "LIVE-CP3") as new:
                await asyncio.wait_for(old._connection.wait_closed(), 10)
                close_code = old._connection.close_code
                request = send_command(app, "LIVE-CP3", "UnlockConnector", {"connectorId": 2})
                outcome = await command_outcome(stack, request)
                return close_code, outcome, new.received, old.received

    close_code, outcome, new_received, old_received = asyncio.run(scenario())
    assert close_code == 4000
    assert outcome[:2] == ("answered", {"status": "Unlocked"})
    assert new_received["UnlockConnector"] == [{"connector_id": 2}]
    assert "UnlockConnector" not in old_received


def test_malformed_and_schema_invalid_frames(stack):
    async def scenario():
        answers = []
        async with websockets.connect(
            f"{ocpp_url(stack)}/LIVE-CP4", subprotocols=["ocpp1.6"]
        ) as ws:
            for frame in [
                '{"no": "array"}',
                '[2, "m1", "BootNotification", {"chargePointVendor": "Acme"}]',
                '[2, "m2", "StatusNotification", {"connectorId": 1, "errorCode": "NoError", '
                '"status": "Charging", "timestamp": 5}]',
                '[2, "m3", "Teleport", {}]',
                '[2, "m4", "Heartbeat", {}]',
            ]:
                await ws.send(frame)
                answer = json.loads(await ws.recv())
                while answer[0] == 2:  # evce's own profiles for this installed station
                    answer = json.loads(await ws.recv())
                answers.append(answer)
            await ws.send("not json at all")
            await asyncio.wait_for(ws.wait_closed(), 10)
            return answers, ws.close_code

    answers, close_code = asyncio.run(scenario())
    assert [a[0] for a in answers] == [4, 4, 4, 4, 3]
    assert [a[2] for a in answers[:4]] == [
        "FormationViolation",
        "OccurenceConstraintViolation",
        "TypeConstraintViolation",
        "NotImplemented",
    ]
    assert close_code == 4003


def test_late_stop_after_reconnect_is_reconciled(stack):
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)

    def ts(minutes: float) -> str:
        return (t0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")

    async def scenario():
        async with connected(ocpp_url(stack), "LIVE-CP4") as cp:
            await cp.boot()
            started = await cp.call(
                cp._call.StartTransaction(
                    connector_id=2, id_tag="CARD-OK", meter_start=5_000, timestamp=ts(0)
                )
            )
        # The station charged offline, reconnects, and replays its queue.
        async with connected(ocpp_url(stack), "LIVE-CP4") as cp:
            again = await cp.call(
                cp._call.StartTransaction(
                    connector_id=2, id_tag="CARD-OK", meter_start=5_000, timestamp=ts(0)
                )
            )
            await cp.call(
                cp._call.StopTransaction(
                    meter_stop=12_000,
                    timestamp=ts(90),
                    transaction_id=started.transaction_id,
                    reason="Local",
                )
            )
            unknown = await cp.call(
                cp._call.StopTransaction(
                    meter_stop=99_000, timestamp=ts(95), transaction_id=10_000_000
                )
            )
        return started.transaction_id, again.transaction_id, unknown

    tx, again, unknown = asyncio.run(scenario())
    assert again == tx
    assert unknown.id_tag_info is None  # acknowledged, no idTag to report on
    [(energy_wh, stopped)] = query(
        stack, "SELECT energy_wh, stopped_at FROM stations_transaction WHERE id = ?", tx
    )
    assert energy_wh == 7_000 and stopped is not None
    [(count,)] = query(
        stack,
        "SELECT COUNT(*) FROM stations_transaction WHERE station_identity = 'LIVE-CP4' "
        "AND started_at IS NULL AND meter_stop_wh = 99000",
    )
    assert count == 1


def _status_of(url: str, **kwargs) -> int:
    async def attempt():
        try:
            async with websockets.connect(url, subprotocols=["ocpp1.6"], **kwargs):
                return 101
        except websockets.InvalidStatus as refused:
            return refused.response.status_code

    return asyncio.run(attempt())


def test_profile_1_basic_auth_before_the_upgrade(stack):
    base = f"127.0.0.1:{stack.ocpp_port}/ocpp/LIVE-P1"
    assert _status_of(f"ws://LIVE-P1:{KEY_P1}@{base}") == 101
    assert _status_of(f"ws://LIVE-P1:wrong-password@{base}") == 401
    assert _status_of(f"ws://{base}") == 401
    [(count,)] = query(
        stack,
        "SELECT COUNT(*) FROM maintenance_devicelogentry "
        "WHERE event = 'ocpp_connection_refused' AND station_identity = 'LIVE-P1'",
    )
    assert count >= 1


def test_profile_2_tls_with_the_generated_certificate(stack):
    cert = Path(stack.env["EVCE_DATA_DIR"]) / "tls" / "ocpp-server.crt"
    context = ssl.create_default_context(cafile=str(cert))
    tls_base = f"localhost:{stack.tls_port}/ocpp/LIVE-P2"
    assert _status_of(f"wss://LIVE-P2:{KEY_P2}@{tls_base}", ssl=context) == 101
    assert _status_of(f"wss://LIVE-P2:wrong@{tls_base}", ssl=context) == 401
    # No downgrade: the right key on the plain port is refused.
    plain = f"ws://LIVE-P2:{KEY_P2}@127.0.0.1:{stack.ocpp_port}/ocpp/LIVE-P2"
    assert _status_of(plain) == 403
    # The certificate is the one served (and it names this host).
    with (
        socket.create_connection(("127.0.0.1", stack.tls_port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        served = tls.getpeercert()
    assert ("DNS", "localhost") in served["subjectAltName"]
