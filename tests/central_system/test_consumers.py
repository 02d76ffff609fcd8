"""The OCPP consumer, driven frame by frame through the real ASGI routing."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async

from apps.central_system import commands
from apps.stations.models import OcppMessage, Station, StationState
from tests.stations.factories import ConnectorFactory, StationFactory, TransactionFactory
from tests.zones.factories import ZoneFactory

pytestmark = pytest.mark.django_db


def run(coroutine_function):
    return async_to_sync(coroutine_function)()


def test_unknown_station_is_discovered_and_pending(make_station, identity, redis_url):
    async def scenario():
        station = make_station(identity)
        await station.open()
        answer = await station.boot(chargePointSerialNumber="SN-1", firmwareVersion="1.2")
        assert answer[0] == 3 and answer[2]["status"] == "Pending"
        heartbeat = await station.call("Heartbeat", {})
        assert heartbeat[0] == 4 and heartbeat[2] == "SecurityError"
        await station.close()

    run(scenario)
    discovered = Station.objects.get(identity=identity)
    assert discovered.state == StationState.DISCOVERED
    assert (discovered.vendor, discovered.model, discovered.serial_number) == (
        "Acme",
        "Wallbox",
        "SN-1",
    )
    assert discovered.firmware_version == "1.2"
    assert OcppMessage.objects.filter(station_identity=identity).count() == 4


def test_installed_station_is_accepted(make_station, redis_url):
    installed = StationFactory()

    async def scenario():
        station = make_station(installed.identity)
        await station.open()
        answer = await station.boot()
        assert answer[2]["status"] == "Accepted"
        assert answer[2]["interval"] == 60
        heartbeat = await station.call("Heartbeat", {})
        assert heartbeat[0] == 3 and heartbeat[2]["currentTime"].endswith("Z")
        await station.close()

    run(scenario)


def test_accepted_boot_pushes_the_station_configuration(make_station, redis_url):
    installed = StationFactory()

    async def scenario():
        station = make_station(installed.identity)
        await station.open()
        answer = await station.boot()
        assert answer[2]["status"] == "Accepted"
        pushed = []
        for _ in range(3):
            frame = await station.receive()
            assert frame[0] == 2 and frame[2] == "ChangeConfiguration"
            pushed.append((frame[3]["key"], frame[3]["value"]))
            await station.answer(frame, {"status": "Accepted"})
        await station.close()
        return pushed

    assert run(scenario) == [
        ("HeartbeatInterval", "60"),
        ("MeterValueSampleInterval", "10"),
        (
            "MeterValuesSampledData",
            "Current.Import,Power.Active.Import,Energy.Active.Import.Register,Current.Offered",
        ),
    ]


def test_accepted_boot_installs_the_fallback_profiles_first(make_station, redis_url):
    """A car plugged in right after the boot must not charge at the connector maximum."""
    zone = ZoneFactory(max_current_a=Decimal("40"))
    installed = StationFactory(zone=zone)
    ConnectorFactory(station=installed, connector_id=1)
    ConnectorFactory(station=installed, connector_id=2)

    async def scenario():
        station = make_station(installed.identity)
        await station.open()
        await station.boot()
        frames = []
        for _ in range(6):
            frame = await station.receive()
            frames.append(frame)
            await station.answer(frame, {"status": "Accepted"})
        await station.close()
        return frames

    frames = run(scenario)
    assert [f[2] for f in frames] == (
        ["ClearChargingProfile"] + ["SetChargingProfile"] * 2 + ["ChangeConfiguration"] * 3
    )
    # Every TxDefaultProfile goes first, on every connector: one a previous central
    # system left at a higher stack level would prevail over evce's fallback.
    assert frames[0][3] == {"chargingProfilePurpose": "TxDefaultProfile"}
    profiles = {f[3]["connectorId"]: f[3]["csChargingProfiles"] for f in frames[1:3]}
    assert sorted(profiles) == [1, 2]
    for profile in profiles.values():
        assert profile["chargingProfilePurpose"] == "TxDefaultProfile"
        # Static zone: 40 A shared by its two connectors (SPEC §3.8).
        assert profile["chargingSchedule"]["chargingSchedulePeriod"] == [
            {"startPeriod": 0, "limit": 20.0}
        ]


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ('{"not": "an array"}', "FormationViolation"),
        ('[2, "a1", "Heartbeat"]', "ProtocolError"),
        ('[2, "a2", "Heartbeat", {}, "extra"]', "FormationViolation"),
        ('[2, "a3", 17, {}]', "FormationViolation"),
        ('[2, "a4", "Heartbeat", []]', "FormationViolation"),
        ('[2, "' + "x" * 37 + '", "Heartbeat", {}]', "TypeConstraintViolation"),
        ('[2, "a5", "FlyToTheMoon", {}]', "NotImplemented"),
        ('[2, "a6", "Reset", {"type": "Hard"}]', "NotSupported"),
        (
            '[2, "a7", "StatusNotification", {"connectorId": 1, "errorCode": "NoError"}]',
            "OccurenceConstraintViolation",
        ),
        (
            '[2, "a8", "StatusNotification", {"connectorId": "1", "errorCode": "NoError", '
            '"status": "Available"}]',
            "TypeConstraintViolation",
        ),
        (
            '[2, "a9", "StatusNotification", {"connectorId": 1, "errorCode": "NoError", '
            '"status": "Sleeping"}]',
            "PropertyConstraintViolation",
        ),
        ('[2, "b1", "Heartbeat", {"surprise": 1}]', "FormationViolation"),
        ('[2, "b2", "Authorize", {"idTag": "' + "T" * 21 + '"}]', "TypeConstraintViolation"),
        (
            '[2, "b3", "StatusNotification", {"connectorId": 1, "errorCode": "NoError", '
            '"status": "Available", "timestamp": "yesterday"}]',
            "TypeConstraintViolation",
        ),
    ],
)
def test_malformed_and_invalid_frames_get_the_right_callerror(make_station, frame, code, redis_url):
    installed = StationFactory()

    async def scenario():
        station = make_station(installed.identity)
        await station.open()
        await station.send_text(frame)
        answer = await station.receive()
        # The connection survives: the next CALL is answered normally.
        heartbeat = await station.call("Heartbeat", {})
        await station.close()
        return answer, heartbeat

    answer, heartbeat = run(scenario)
    assert answer[0] == 4 and answer[2] == code, answer
    assert heartbeat[0] == 3


def test_results_and_errors_without_a_call_are_ignored(make_station, redis_url):
    installed = StationFactory()

    async def scenario():
        station = make_station(installed.identity)
        await station.open()
        await station.send_text('[3, "nobody-asked", {}]')
        await station.send_text('[4, "nobody-asked", "GenericError", "", {}]')
        await station.send_text('[3, "broken"]')
        await station.send_text('[9, "x", {}]')
        assert await station.nothing_more(0.3)
        assert (await station.call("Heartbeat", {}))[0] == 3
        await station.close()

    run(scenario)


def test_non_json_text_and_binary_frames_close_the_socket(make_station, redis_url):
    installed = StationFactory()

    async def scenario():
        station = make_station(installed.identity)
        await station.open()
        await station.send_text("this is not JSON")
        closed = await station.output()
        await station.close()
        station = make_station(installed.identity)
        await station.open()
        await station.communicator.send_to(bytes_data=b"\x00\x01")
        closed_binary = await station.output()
        await station.close()
        return closed, closed_binary

    closed, closed_binary = run(scenario)
    assert closed == {"type": "websocket.close", "code": 4003}
    assert closed_binary == {"type": "websocket.close", "code": 4003}
    assert OcppMessage.objects.filter(
        station_identity=installed.identity, message_type=0, payload__raw="this is not JSON"
    ).exists()


def test_without_the_ocpp_subprotocol_the_socket_is_accepted_then_closed(
    make_station, identity, redis_url
):
    async def scenario():
        station = make_station(identity, subprotocols=["ocpp2.0.1"])
        accepted = await station.connect()
        closed = await station.output()
        return accepted, closed

    accepted, closed = run(scenario)
    assert accepted == {"type": "websocket.accept", "subprotocol": None}
    assert closed["type"] == "websocket.close"


def test_a_repeated_message_id_is_processed_once(make_station, identity, redis_url):
    # A fresh identity: Redis remembers message ids across test runs.
    installed = StationFactory(identity=identity)
    payload = {
        "connectorId": 1,
        "idTag": "CARD1",
        "meterStart": 100,
        "timestamp": "2025-03-01T08:00:00Z",
    }

    async def scenario():
        station = make_station(installed.identity)
        await station.open()
        first = await station.call("StartTransaction", payload, unique_id="start-1")
        again = await station.call("StartTransaction", payload, unique_id="start-1")
        # A new message id with the same start is still the same session.
        other_id = await station.call("StartTransaction", payload, unique_id="start-2")
        await station.close()
        return first, again, other_id

    first, again, other_id = run(scenario)
    assert first == again
    assert other_id[2]["transactionId"] == first[2]["transactionId"]
    assert first[2]["idTagInfo"] == {"status": "Invalid"}
    assert installed.transactions.count() == 1


def test_a_repeated_meter_values_message_is_stored_once(make_station, identity, redis_url):
    installed = StationFactory(identity=identity)
    session = TransactionFactory(station=installed, meter_start_wh=0)
    payload = {
        "connectorId": 1,
        "transactionId": session.pk,
        "meterValue": [
            {
                "timestamp": "2025-03-01T08:00:10Z",
                "sampledValue": [{"value": "1500", "unit": "Wh"}],
            }
        ],
    }

    async def scenario():
        station = make_station(installed.identity)
        await station.open()
        answers = [await station.call("MeterValues", payload, unique_id="mv-1") for _ in range(2)]
        await station.close()
        return answers

    assert [a[0] for a in run(scenario)] == [3, 3]
    assert session.samples.count() == 1
    session.refresh_from_db()
    assert session.energy_wh == 1500


def test_a_second_connection_replaces_the_first(make_station, redis_url):
    installed = StationFactory()

    async def scenario():
        old = make_station(installed.identity)
        await old.open()
        new = make_station(installed.identity)
        await new.open()
        closed = await old.output()
        await old.communicator.send_input({"type": "websocket.disconnect", "code": 4000})
        # Commands now reach the new connection only.
        pending = asyncio.create_task(commands.send(installed.identity, commands.clear_cache()))
        frame = await new.receive()
        await new.answer(frame, {"status": "Accepted"})
        assert await pending == {"status": "Accepted"}
        assert await old.nothing_more()
        assert station_is_online_now(installed.identity)
        await new.close()
        await old.communicator.wait()
        return closed

    closed = run(scenario)
    assert closed == {"type": "websocket.close", "code": 4000}


def station_is_online_now(identity: str) -> bool:
    from apps.stations import presence

    return presence.connection_info(identity) is not None


def test_installing_a_connected_station_asks_it_to_boot_again(
    make_station, identity, redis_url, django_capture_on_commit_callbacks
):
    from apps.stations.services import station_install
    from tests.zones.factories import ZoneFactory

    zone = ZoneFactory()

    async def scenario():
        station = make_station(identity)
        await station.open()
        assert (await station.boot())[2]["status"] == "Pending"
        discovered = await database_sync_to_async(Station.objects.get)(identity=identity)

        def install():
            with django_capture_on_commit_callbacks(execute=True):
                station_install(discovered, name="Bay 7", zone=zone)

        await database_sync_to_async(install)()
        trigger = await station.receive()
        assert trigger[2:] == ["TriggerMessage", {"requestedMessage": "BootNotification"}]
        await station.answer(trigger, {"status": "Accepted"})
        assert (await station.boot())[2]["status"] == "Accepted"
        await station.close()

    run(scenario)


def test_refusing_a_connected_station_closes_its_socket(
    make_station, redis_url, django_capture_on_commit_callbacks
):
    from apps.stations.services import station_refuse

    installed = StationFactory()

    async def scenario():
        station = make_station(installed.identity)
        await station.open()

        def refuse():
            with django_capture_on_commit_callbacks(execute=True):
                station_refuse(installed)

        await database_sync_to_async(refuse)()
        closed = await station.output()
        await station.communicator.send_input({"type": "websocket.disconnect", "code": 4001})
        await station.communicator.wait()
        again = make_station(installed.identity)
        await again.open()
        boot = await again.boot()
        await again.close()
        return closed, boot

    closed, boot = run(scenario)
    assert closed == {"type": "websocket.close", "code": 4001}
    assert boot[2]["status"] == "Rejected"


def test_every_frame_is_logged(make_station, redis_url):
    installed = StationFactory()

    async def scenario():
        station = make_station(installed.identity)
        await station.open()
        await station.call("Heartbeat", {}, unique_id="hb-1")
        await station.send_text('[2, "bad-1", "Heartbeat", {"x": 1}]')
        await station.receive()
        await station.close()

    run(scenario)
    logged = list(
        OcppMessage.objects.filter(station_identity=installed.identity)
        .order_by("id")
        .values_list("direction", "message_type", "unique_id", "action")
    )
    assert logged == [
        ("in", 2, "hb-1", "Heartbeat"),
        ("out", 3, "hb-1", "Heartbeat"),
        ("in", 2, "bad-1", "Heartbeat"),
        ("out", 4, "bad-1", ""),
    ]


def test_a_new_start_on_a_connector_supersedes_the_session_left_open(
    make_station, identity, redis_url
):
    """A rebooted station's lost StopTransaction must not leave the loop driving the old id."""
    from apps.energy.snapshot import build_snapshot
    from apps.stations.models import Transaction

    installed = StationFactory(identity=identity)
    ConnectorFactory(station=installed, connector_id=1)

    def start(tag: str, meter_wh: int, at: str) -> dict:
        return {"connectorId": 1, "idTag": tag, "meterStart": meter_wh, "timestamp": at}

    async def scenario():
        station = make_station(installed.identity)
        await station.open()
        first = await station.call("StartTransaction", start("CARD1", 100, "2025-03-01T08:00:00Z"))
        old_id = first[2]["transactionId"]
        await station.call(
            "MeterValues",
            {
                "connectorId": 1,
                "transactionId": old_id,
                "meterValue": [
                    {
                        "timestamp": "2025-03-01T08:30:00Z",
                        "sampledValue": [{"value": "6100", "unit": "Wh"}],
                    }
                ],
            },
        )
        await station.close()
        # The station reboots; the StopTransaction of the first session is lost.
        rebooted = make_station(installed.identity)
        await rebooted.open()
        second = await rebooted.call(
            "StartTransaction", start("CARD2", 7000, "2025-03-01T10:00:00Z")
        )
        refs = (await database_sync_to_async(build_snapshot)()).transaction_ids
        await rebooted.close()
        return old_id, second[2]["transactionId"], refs

    old_id, new_id, refs = run(scenario)
    assert new_id != old_id
    old = Transaction.objects.get(pk=old_id)
    assert (old.stop_reason, old.energy_wh, old.meter_stop_wh) == ("Superseded", 6000, 6100)
    assert Transaction.objects.get(stopped_at__isnull=True).pk == new_id
    # The control loop drives the session the station runs now.
    assert refs[f"{installed.identity}/1"] == new_id
