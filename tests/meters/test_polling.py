"""Polling real Modbus TCP meters: hot state, history, lost/recovered, re-allocation requests."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from apps.devicelog.models import DeviceLogEntry
from apps.energy.control import rebalance_once
from apps.energy.services import DIRTY
from apps.meters.models import Meter, MeterModel, MeterRecord
from apps.meters.services import meters_poll
from apps.meters.state import MeterStatus, meter_hot_state
from apps.meters.tasks import poll_meters_task
from apps.zones.models import Zone
from evce_site.hotstate import redis_client
from tests.conftest import free_port
from tests.meters.factories import modbus_meter

pytestmark = pytest.mark.django_db


@pytest.fixture
def main_meter(meter_simulator):
    meter = modbus_meter(meter_simulator.port)
    Zone.objects.create(name="Main", max_current_a=100, meter=meter, degraded_current_a=20)
    return meter


def test_a_poll_keeps_the_latest_values_and_a_history(meter_simulator, main_meter, hot_state):
    meter_simulator.set_values(1, current_a=(31.5, 20.0, 12.25), energy_kwh=1234.5)
    now = timezone.now()
    result = meters_poll(now=now)
    assert (result.read, result.failed) == (1, 0)
    state = meter_hot_state(main_meter.pk)
    assert state["status"] == MeterStatus.CONNECTED
    assert state["values"]["current_l1_a"] == pytest.approx(31.5)
    assert state["values"]["current_l3_a"] == pytest.approx(12.25)
    assert state["values"]["energy_delivered_kwh"] == pytest.approx(1234.5)
    assert MeterRecord.objects.filter(meter=main_meter).count() == 1
    # A zone meter that moved asks for a re-allocation.
    assert result.rebalance
    assert "meter" in redis_client().smembers(DIRTY)

    # History is downsampled (one record per 10 s), hot state follows every poll.
    meter_simulator.set_values(1, current_a=(40.0, 20.0, 12.25))
    meters_poll(now=now + timedelta(seconds=1))
    assert MeterRecord.objects.filter(meter=main_meter).count() == 1
    assert meter_hot_state(main_meter.pk)["values"]["current_l1_a"] == pytest.approx(40.0)
    meters_poll(now=now + timedelta(seconds=11))
    assert MeterRecord.objects.filter(meter=main_meter).count() == 2


def test_an_unchanged_reading_does_not_ask_for_a_reallocation(
    meter_simulator, main_meter, hot_state
):
    meter_simulator.set_values(1, current_a=(10.0, 10.0, 10.0))
    assert meters_poll().rebalance  # no allocation has used this meter yet
    rebalance_once()
    redis_client().delete(DIRTY)
    meter_simulator.set_values(1, current_a=(10.2, 10.0, 9.9))  # below the 0.5 A threshold
    assert not meters_poll().rebalance
    assert not redis_client().exists(DIRTY)


def test_a_load_creeping_up_is_seen_once_it_departs_from_the_last_allocation(
    meter_simulator, main_meter, hot_state
):
    """0.3 A more at every poll: never 0.5 A from one poll to the next, yet 27 A in 90 polls."""
    meter_simulator.set_values(1, current_a=(10.0, 10.0, 10.0))
    meters_poll()
    rebalance_once()
    meter_simulator.set_values(1, current_a=(10.3, 10.0, 10.0))
    assert not meters_poll().rebalance
    meter_simulator.set_values(1, current_a=(10.6, 10.0, 10.0))
    assert meters_poll().rebalance  # 0.6 A above what the allocation used
    rebalance_once()
    meter_simulator.set_values(1, current_a=(10.9, 10.0, 10.0))
    assert not meters_poll().rebalance  # the new allocation used 10.6 A


def test_a_failed_poll_keeps_the_last_values_and_asks_for_nothing(
    meter_simulator, main_meter, hot_state
):
    """Not lost yet: no re-allocation on the failure, nor on the recovery with the same values."""
    meter_simulator.set_values(1, current_a=(30.0, 20.0, 10.0))
    now = timezone.now()
    meters_poll(now=now)
    rebalance_once(now=now)
    meter_simulator.set_online(1, False)
    result = meters_poll(now=now + timedelta(seconds=0.5))
    state = meter_hot_state(main_meter.pk)
    assert state["status"] == MeterStatus.ERROR
    assert state["values"]["current_l1_a"] == pytest.approx(30.0)
    assert state["read_at"] == now.isoformat()  # the age of the values it keeps
    assert not result.rebalance
    meter_simulator.set_online(1, True)
    assert not meters_poll(now=now + timedelta(seconds=1)).rebalance


def test_a_meter_is_lost_after_three_failures_and_recovers_on_the_first_success(
    meter_simulator, main_meter, hot_state
):
    meter_simulator.set_values(1, current_a=(10.0, 10.0, 10.0))
    meters_poll()
    meter_simulator.set_online(1, False)
    for attempt in (1, 2):
        result = meters_poll()
        state = meter_hot_state(main_meter.pk)
        assert state["status"] == MeterStatus.ERROR and state["failures"] == attempt
        assert result.lost == []
    redis_client().delete(DIRTY)
    result = meters_poll()
    assert result.lost == ["main"]
    assert meter_hot_state(main_meter.pk)["status"] == MeterStatus.LOST
    assert "meter" in redis_client().smembers(DIRTY)
    lost = DeviceLogEntry.objects.get(event="meter_lost")
    assert lost.category == "communication" and "main" in lost.message

    meter_simulator.set_online(1, True)
    result = meters_poll()
    assert result.recovered == ["main"]
    assert meter_hot_state(main_meter.pk)["status"] == MeterStatus.CONNECTED
    assert DeviceLogEntry.objects.filter(event="meter_recovered").count() == 1


def test_a_reporting_meter_is_only_recorded(meter_simulator, hot_state):
    model = MeterModel.objects.get(name="pm5320")
    Meter.objects.create(
        name="hvac",
        model=model,
        host="127.0.0.1",
        port=meter_simulator.port,
        unit_id=2,
        is_reporting=True,
    )
    meter_simulator.set_values(2, current_a=(5.0, 5.0, 5.0))
    result = meters_poll()
    assert result.read == 1 and not result.rebalance
    assert MeterRecord.objects.filter(meter__name="hvac").count() == 1


def test_the_poll_task_honours_the_site_period(meter_simulator, main_meter, hot_state):
    meter_simulator.set_values(1, current_a=(1.0, 2.0, 3.0))
    poll_meters_task()
    first = meter_hot_state(main_meter.pk)["read_at"]
    poll_meters_task()  # within the 500 ms period: skipped
    assert meter_hot_state(main_meter.pk)["read_at"] == first


def test_meter_read_command_prints_values_with_units(meter_simulator, main_meter, capsys):
    meter_simulator.set_values(
        1, current_a=(16.0, 15.5, 0.0), power_kw=(3.68, 3.565, 0.0), energy_kwh=42.0
    )
    call_command("meter", "read", "main")
    out = capsys.readouterr().out
    assert "current_l1_a" in out and "16.000 A" in out
    assert "power_l1_kw" in out and "3.680 kW" in out
    assert "42.000 kWh" in out
    call_command("meter", "read", "main", "--json")
    assert '"current_l2_a": 15.5' in capsys.readouterr().out


def test_meter_read_command_reports_errors_clearly(main_meter):
    Meter.objects.filter(pk=main_meter.pk).update(port=free_port())
    with pytest.raises(CommandError, match="refused"):
        call_command("meter", "read", "main")
    with pytest.raises(CommandError, match="No meter named 'nope'"):
        call_command("meter", "read", "nope")


def test_meter_models_round_trip_as_json(tmp_path, capsys):
    call_command("meter", "export-model", "pm5320", str(tmp_path / "pm.json"))
    exported = json.loads((tmp_path / "pm.json").read_text())
    assert exported["registers"]["current_l1_a"]["address"] == 2999
    exported["name"] = "my-meter"
    exported["registers"]["current_l1_a"]["scale"] = 0.1
    (tmp_path / "custom.json").write_text(json.dumps(exported))
    call_command("meter", "import-model", str(tmp_path / "custom.json"))
    assert MeterModel.objects.get(name="my-meter").register_map["current_l1_a"]["scale"] == 0.1
    assert not MeterModel.objects.get(name="my-meter").builtin


def test_a_bad_meter_model_json_is_refused_with_paths_and_changes_nothing(tmp_path, capsys):
    bad = {"name": "broken", "registers": {"current_l1_a": {"address": 70000, "format": "float33"}}}
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(CommandError, match="nothing was changed"):
        call_command("meter", "import-model", str(tmp_path / "bad.json"))
    err = capsys.readouterr().err
    assert "registers.current_l1_a.format" in err and "registers.current_l1_a.address" in err
    assert not MeterModel.objects.filter(name="broken").exists()
    builtin = {"name": "pm5320", "registers": {"current_l1_a": {"address": 1, "format": "float32"}}}
    (tmp_path / "builtin.json").write_text(json.dumps(builtin))
    with pytest.raises(CommandError):
        call_command("meter", "import-model", str(tmp_path / "builtin.json"))
    assert MeterModel.objects.get(name="pm5320").register_map["current_l1_a"]["address"] == 2999
