"""No secret a command carries survives in what evce stores (OCPP log, results, device log)."""

from __future__ import annotations

import asyncio
import inspect
import io
from datetime import UTC, datetime

import pytest
from asgiref.sync import async_to_sync
from django.core.management import call_command

from apps.central_system import commands, services
from apps.central_system.redaction import REDACTED, redact
from tests.stations.factories import StationFactory

pytestmark = pytest.mark.django_db

SECRET = "0123456789ABCDEF0123456789ABCDEF53CE7E70"
PRIVATE = f"-----BEGIN PRIVATE KEY-----\n{SECRET}\n-----END PRIVATE KEY-----\n"
PEM_WITH_KEY = (
    "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n" + PRIVATE
)
WHEN = datetime(2031, 1, 1, tzinfo=UTC)
PROFILE = {
    "chargingProfileId": 1,
    "stackLevel": 1,
    "chargingProfilePurpose": "TxDefaultProfile",
    "chargingProfileKind": "Absolute",
    "chargingSchedule": {
        "chargingRateUnit": "A",
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16}],
    },
}

# Every CS→CP builder, with a secret wherever its payload may carry one.
BUILT = {
    "remote_start": commands.remote_start("TAG1", connector_id=1),
    "remote_stop": commands.remote_stop(12),
    "reset": commands.reset("Hard"),
    "change_availability": commands.change_availability(0, "Inoperative"),
    "change_configuration": commands.change_configuration("AuthorizationKey", SECRET),
    "get_configuration": commands.get_configuration(["AuthorizationKey"]),
    "set_charging_profile": commands.set_charging_profile(1, PROFILE),
    "clear_charging_profile": commands.clear_charging_profile(profile_id=1),
    "get_composite_schedule": commands.get_composite_schedule(1, 3600),
    "trigger_message": commands.trigger_message("StatusNotification", connector_id=1),
    "extended_trigger_message": commands.extended_trigger_message("BootNotification"),
    "unlock_connector": commands.unlock_connector(1),
    "data_transfer": commands.data_transfer("evce", message_id="key", data=PRIVATE),
    "send_local_list": commands.send_local_list(1, "Full", [{"idTag": "A"}]),
    "get_local_list_version": commands.get_local_list_version(),
    "clear_cache": commands.clear_cache(),
    "get_diagnostics": commands.get_diagnostics("ftp://example.com/"),
    "update_firmware": commands.update_firmware("https://example.com/fw", WHEN),
    "reserve_now": commands.reserve_now(1, WHEN, "TAG1", 7),
    "cancel_reservation": commands.cancel_reservation(7),
    "get_log": commands.get_log("SecurityLog", 1, "https://example.com/logs"),
    "signed_update_firmware": commands.signed_update_firmware(
        1,
        location="https://example.com/fw",
        retrieve_date=WHEN,
        signing_certificate=PEM_WITH_KEY,
        signature="c2ln",
    ),
    "install_certificate": commands.install_certificate(
        "CentralSystemRootCertificate", PEM_WITH_KEY
    ),
    "certificate_signed": commands.certificate_signed(PEM_WITH_KEY),
    "get_installed_certificate_ids": commands.get_installed_certificate_ids(
        "CentralSystemRootCertificate"
    ),
    "delete_certificate": commands.delete_certificate(
        {
            "hashAlgorithm": "SHA256",
            "issuerNameHash": "a" * 64,
            "issuerKeyHash": "b" * 64,
            "serialNumber": "01",
        }
    ),
}
# What a station answers, with the secret where an answer may echo it.
ANSWERS = {
    "GetConfiguration": {
        "configurationKey": [{"key": "AuthorizationKey", "readonly": False, "value": SECRET}]
    },
    "DataTransfer": {"status": "Accepted", "data": PRIVATE},
}


def test_every_builder_is_covered():
    builders = {
        name
        for name, function in inspect.getmembers(commands, inspect.isfunction)
        if function.__module__ == commands.__name__
        and not name.startswith("_")
        and inspect.signature(function).return_annotation in (commands.Command, "Command")
    }
    assert builders == set(BUILT)


def test_redaction_keeps_what_is_not_secret():
    payload = BUILT["change_configuration"].payload
    assert redact("ChangeConfiguration", payload) == {"key": "AuthorizationKey", "value": REDACTED}
    assert payload["value"] == SECRET  # what is sent stays as it is
    heartbeat = commands.change_configuration("HeartbeatInterval", "60").payload
    assert redact("ChangeConfiguration", heartbeat) is heartbeat
    chain = redact("CertificateSigned", BUILT["certificate_signed"].payload)["certificateChain"]
    assert "BEGIN CERTIFICATE" in chain and "PRIVATE" not in chain


def test_no_secret_survives_the_logging_path(make_station, redis_url):
    station = StationFactory()

    async def scenario():
        cp = make_station(station.identity)
        await cp.open()
        for command in BUILT.values():
            assert commands.checked_payload(command.action, command.payload) == command.payload
            pending = asyncio.create_task(commands.send(station.identity, command))
            frame = await cp.receive()
            assert frame[2] == command.action and frame[3] == command.payload  # sent in clear
            await cp.answer(frame, ANSWERS.get(command.action, {"status": "Accepted"}))
            await pending
        await cp.close()

    async_to_sync(scenario)()
    for command in BUILT.values():
        services.command_request(
            identity=station.identity, action=command.action, payload=command.payload
        )
        services.command_failed_event(
            station.identity, command.action, "Rejected", {"payload": command.payload}
        )
    out = io.StringIO()
    call_command("dumpdata", "stations", "central_system", "devicelog", "maintenance", stdout=out)
    dump = out.getvalue()
    assert "AuthorizationKey" in dump and REDACTED in dump  # the rows are there...
    assert SECRET not in dump  # ...without the secret
