"""Commands to stations: the caller side and the consumer's queue, in one process."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import async_to_sync

from apps.central_system import commands, hotstate
from apps.stations.models import MeterSample
from tests.stations.factories import StationFactory, TransactionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def station(db):
    return StationFactory()


def run(coroutine_function):
    return async_to_sync(coroutine_function)()


def test_builders_make_schema_valid_payloads():
    built = [
        commands.remote_start("TAG1", connector_id=1),
        commands.remote_stop(12),
        commands.reset("Hard"),
        commands.change_availability(0, "Inoperative"),
        commands.change_configuration("HeartbeatInterval", "60"),
        commands.get_configuration(["HeartbeatInterval"]),
        commands.set_charging_profile(
            1,
            {
                "chargingProfileId": 1,
                "stackLevel": 1,
                "chargingProfilePurpose": "TxDefaultProfile",
                "chargingProfileKind": "Absolute",
                "chargingSchedule": {
                    "chargingRateUnit": "A",
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 21.4}],
                },
            },
        ),
        commands.clear_charging_profile(profile_id=1),
        commands.get_composite_schedule(1, 3600, charging_rate_unit="A"),
        commands.trigger_message("StatusNotification", connector_id=1),
        commands.unlock_connector(1),
        commands.data_transfer("evce", message_id="x", data="y"),
        commands.send_local_list(1, "Full", [{"idTag": "A", "idTagInfo": {"status": "Accepted"}}]),
        commands.get_local_list_version(),
        commands.clear_cache(),
    ]
    for command in built:
        assert commands.checked_payload(command.action, command.payload) == command.payload


def test_invalid_commands_are_refused_before_sending():
    with pytest.raises(commands.InvalidCommand, match="not a command"):
        commands.call_sync("CP1", "Heartbeat", {})
    with pytest.raises(commands.InvalidCommand, match="type"):
        commands.send_sync("CP1", commands.reset("Sideways"))


def test_offline_station_fails_at_once(redis_url):
    with pytest.raises(commands.StationOffline):
        commands.send_sync("NOBODY-HERE", commands.reset("Soft"), timeout_s=2)


def test_round_trip_through_the_channel_layer(make_station, station, redis_url):
    async def scenario():
        cp = make_station(station.identity)
        await cp.open()
        pending = asyncio.create_task(commands.send(station.identity, commands.reset("Hard")))
        frame = await cp.receive()
        assert frame[0] == 2 and frame[2:] == ["Reset", {"type": "Hard"}]
        await cp.answer(frame, {"status": "Rejected"})
        assert await pending == {"status": "Rejected"}
        await cp.close()

    run(scenario)


def test_one_outstanding_call_at_a_time_in_order(make_station, station, redis_url):
    async def scenario():
        cp = make_station(station.identity)
        await cp.open()
        first = asyncio.create_task(commands.send(station.identity, commands.unlock_connector(1)))
        await asyncio.sleep(0.2)
        second = asyncio.create_task(commands.send(station.identity, commands.clear_cache()))
        frame = await cp.receive()
        assert frame[2] == "UnlockConnector"
        # The second command waits for the first answer.
        assert await cp.nothing_more(0.5)
        await cp.answer(frame, {"status": "Unlocked"})
        frame = await cp.receive()
        assert frame[2] == "ClearCache"
        await cp.answer(frame, {"status": "Accepted"})
        assert await first == {"status": "Unlocked"}
        assert await second == {"status": "Accepted"}
        await cp.close()

    run(scenario)


def test_call_error_and_timeout(make_station, station, redis_url):
    async def scenario():
        cp = make_station(station.identity)
        await cp.open()
        pending = asyncio.create_task(commands.send(station.identity, commands.clear_cache()))
        frame = await cp.receive()
        await cp.send_text(f'[4,"{frame[1]}","NotSupported","no cache here",{{}}]')
        with pytest.raises(commands.CallError) as error:
            await pending
        assert error.value.code == "NotSupported"
        assert error.value.description == "no cache here"

        with pytest.raises(commands.CallTimeout):
            await commands.send(station.identity, commands.clear_cache(), timeout_s=0.5)
        # The line is free again after the timeout.
        pending = asyncio.create_task(commands.send(station.identity, commands.clear_cache()))
        await cp.receive()  # the timed-out CALL
        frame = await cp.receive()
        await cp.answer(frame, {"status": "Accepted"})
        assert await pending == {"status": "Accepted"}
        await cp.close()

    run(scenario)


def test_disconnection_fails_waiting_commands(make_station, station, redis_url):
    async def scenario():
        cp = make_station(station.identity)
        await cp.open()
        pending = asyncio.create_task(commands.send(station.identity, commands.clear_cache()))
        await cp.receive()
        await cp.close()
        with pytest.raises(commands.StationOffline, match="disconnected"):
            await pending
        with pytest.raises(commands.StationOffline):
            await commands.send(station.identity, commands.clear_cache())

    run(scenario)


def test_many_commands_go_out_in_one_batch_per_process(make_station, redis_url):
    first, second = StationFactory(), StationFactory()

    async def scenario():
        one, two = make_station(first.identity), make_station(second.identity)
        await one.open()
        await two.open()
        pending = asyncio.create_task(
            commands.call_many(
                [
                    (first.identity, "ClearCache", {}),
                    ("NOBODY-HERE", "ClearCache", {}),
                    (second.identity, "Reset", {"type": "Hard"}),
                    (second.identity, "Reset", {"type": "Sideways"}),
                ],
                timeout_s=5,
            )
        )
        to_one, to_two = await one.receive(), await two.receive()
        assert to_one[2:] == ["ClearCache", {}]
        assert to_two[2:] == ["Reset", {"type": "Hard"}]
        await two.answer(to_two, {"status": "Rejected"})
        await one.answer(to_one, {"status": "Accepted"})
        outcomes = await pending
        assert outcomes[0].result == {"status": "Accepted"}
        assert isinstance(outcomes[1].result, commands.StationOffline)
        assert outcomes[2].result == {"status": "Rejected"}
        # An invalid payload is refused without reaching the station.
        assert isinstance(outcomes[3].result, commands.InvalidCommand)
        assert await two.nothing_more(0.3)
        assert all(outcome.at_s > 0 for outcome in outcomes)
        await one.close()
        await two.close()

    run(scenario)


def test_a_batch_for_a_closed_connection_answers_offline(make_station, station, redis_url):
    async def scenario():
        cp = make_station(station.identity)
        await cp.open()
        await cp.close()
        outcomes = await commands.call_many([(station.identity, "ClearCache", {})], timeout_s=2)
        assert isinstance(outcomes[0].result, commands.StationOffline)

    run(scenario)


def test_a_carried_command_for_a_gone_consumer_answers_offline(make_station, station, redis_url):
    from channels.layers import get_channel_layer

    from apps.central_system import hotstate

    async def scenario():
        cp = make_station(station.identity)
        await cp.open()
        layer = get_channel_layer()
        carrier = await hotstate.connection_channel(station.identity)
        reply_to = await layer.new_channel()
        gone = carrier.partition("!")[0] + "!no-such-consumer"
        await layer.send(
            carrier,
            {
                "type": "ocpp.commands",
                "commands": [
                    {
                        "type": "ocpp.command",
                        "channel": gone,
                        "request_id": "r1",
                        "action": "ClearCache",
                        "payload": {},
                        "reply_to": reply_to,
                        "timeout_s": 2.0,
                    }
                ],
            },
        )
        answer = await asyncio.wait_for(layer.receive(reply_to), 5)
        assert answer["outcome"] == "offline" and answer["request_id"] == "r1"
        assert await cp.nothing_more(0.2)
        await cp.close()

    run(scenario)


def test_a_sample_is_marked_as_asked_for_once_the_station_answered(make_station, hot_state):
    """A sample on its way when the station is asked for one is stored before the mark.

    The station sends a periodic sample, then answers the request for a new
    one, then sends it: only the last is stored after the mark.
    """
    installed = StationFactory()
    session = TransactionFactory(station=installed, meter_start_wh=0)

    def sample(at: str) -> dict:
        value = {"value": "16", "measurand": "Current.Import", "unit": "A", "phase": "L1"}
        return {
            "connectorId": 1,
            "transactionId": session.pk,
            "meterValue": [{"timestamp": at, "sampledValue": [value]}],
        }

    async def scenario():
        cp = make_station(installed.identity)
        await cp.open()
        asked = asyncio.create_task(
            commands.send(
                installed.identity, commands.trigger_message("MeterValues", connector_id=1)
            )
        )
        frame = await cp.receive()
        assert frame[2] == "TriggerMessage"
        await cp.call("MeterValues", sample("2025-03-01T08:00:00Z"))  # on its way
        await cp.answer(frame, {"status": "Accepted"})
        assert await asked == {"status": "Accepted"}
        await cp.call("MeterValues", sample("2025-03-01T08:00:05Z"))  # the one asked for
        await cp.close()

    run(scenario)
    before, after = MeterSample.objects.filter(transaction=session).order_by("pk")
    mark = hotstate.samples_asked_marks([installed.identity])[installed.identity]
    assert before.pk <= mark < after.pk
