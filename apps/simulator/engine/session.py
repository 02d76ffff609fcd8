"""The OCPP 1.6 side of one WebSocket connection of a simulated charge point.

Thin on purpose: it turns central-system CALLs into calls on the station
(whose state outlives the connection) and the station's answers into OCPP
payloads. Side effects that must follow the answer on the wire — the
StopTransaction after a RemoteStopTransaction.conf, the message a
TriggerMessage asked for — are registered by the station and run once the
answer has been sent.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ocpp.routing import on
from ocpp.v16 import ChargePoint, call_result
from ocpp.v16.enums import (
    Action,
    ClearCacheStatus,
    DataTransferStatus,
    GetCompositeScheduleStatus,
)

if TYPE_CHECKING:
    from apps.simulator.engine.station import StationSim

logger = logging.getLogger("apps.simulator.ocpp")


class OcppSession(ChargePoint):
    def __init__(self, station: StationSim, connection: Any, response_timeout_s: float) -> None:
        super().__init__(
            station.identity, connection, response_timeout=response_timeout_s, logger=logger
        )
        self.station = station

    async def route_message(self, raw_msg: str) -> None:
        await super().route_message(raw_msg)
        self.station.run_after_reply()

    @on(Action.remote_start_transaction)
    def on_remote_start_transaction(
        self,
        id_tag: str,
        connector_id: int | None = None,
        charging_profile: dict[str, Any] | None = None,
        **_: Any,
    ) -> call_result.RemoteStartTransaction:
        status = self.station.remote_start(id_tag, connector_id, charging_profile)
        return call_result.RemoteStartTransaction(status=status)

    @on(Action.remote_stop_transaction)
    def on_remote_stop_transaction(
        self, transaction_id: int, **_: Any
    ) -> call_result.RemoteStopTransaction:
        return call_result.RemoteStopTransaction(status=self.station.remote_stop(transaction_id))

    @on(Action.reset)
    def on_reset(self, type: str, **_: Any) -> call_result.Reset:
        return call_result.Reset(status=self.station.reset(type))

    @on(Action.change_availability)
    def on_change_availability(
        self, connector_id: int, type: str, **_: Any
    ) -> call_result.ChangeAvailability:
        return call_result.ChangeAvailability(
            status=self.station.change_availability(connector_id, type)
        )

    @on(Action.change_configuration)
    def on_change_configuration(
        self, key: str, value: str, **_: Any
    ) -> call_result.ChangeConfiguration:
        return call_result.ChangeConfiguration(status=self.station.change_configuration(key, value))

    @on(Action.get_configuration)
    def on_get_configuration(
        self, key: list[str] | None = None, **_: Any
    ) -> call_result.GetConfiguration:
        known, unknown = self.station.config.read(key)
        return call_result.GetConfiguration(
            configuration_key=known, unknown_key=unknown if key else None
        )

    @on(Action.set_charging_profile)
    def on_set_charging_profile(
        self, connector_id: int, cs_charging_profiles: dict[str, Any], **_: Any
    ) -> call_result.SetChargingProfile:
        status = self.station.set_charging_profile(connector_id, cs_charging_profiles)
        return call_result.SetChargingProfile(status=status)

    @on(Action.clear_charging_profile)
    def on_clear_charging_profile(
        self,
        id: int | None = None,
        connector_id: int | None = None,
        charging_profile_purpose: str | None = None,
        stack_level: int | None = None,
        **_: Any,
    ) -> call_result.ClearChargingProfile:
        status = self.station.clear_charging_profile(
            profile_id=id,
            connector_id=connector_id,
            purpose=charging_profile_purpose,
            stack_level=stack_level,
        )
        return call_result.ClearChargingProfile(status=status)

    @on(Action.get_composite_schedule)
    def on_get_composite_schedule(
        self, connector_id: int, duration: int, charging_rate_unit: str | None = None, **_: Any
    ) -> call_result.GetCompositeSchedule:
        answer = self.station.composite_schedule(connector_id, duration, charging_rate_unit)
        if answer is None:
            return call_result.GetCompositeSchedule(status=GetCompositeScheduleStatus.rejected)
        schedule_start, schedule = answer
        return call_result.GetCompositeSchedule(
            status=GetCompositeScheduleStatus.accepted,
            connector_id=connector_id,
            schedule_start=schedule_start,
            charging_schedule=schedule,
        )

    @on(Action.unlock_connector)
    def on_unlock_connector(self, connector_id: int, **_: Any) -> call_result.UnlockConnector:
        return call_result.UnlockConnector(status=self.station.unlock_connector(connector_id))

    @on(Action.trigger_message)
    def on_trigger_message(
        self, requested_message: str, connector_id: int | None = None, **_: Any
    ) -> call_result.TriggerMessage:
        status = self.station.trigger_message(requested_message, connector_id)
        return call_result.TriggerMessage(status=status)

    @on(Action.send_local_list)
    def on_send_local_list(
        self,
        list_version: int,
        update_type: str,
        local_authorization_list: list[dict[str, Any]] | None = None,
        **_: Any,
    ) -> call_result.SendLocalList:
        status = self.station.send_local_list(
            list_version, update_type, local_authorization_list or []
        )
        return call_result.SendLocalList(status=status)

    @on(Action.get_local_list_version)
    def on_get_local_list_version(self, **_: Any) -> call_result.GetLocalListVersion:
        return call_result.GetLocalListVersion(list_version=self.station.local_list_version())

    @on(Action.clear_cache)
    def on_clear_cache(self, **_: Any) -> call_result.ClearCache:
        self.station.auth.clear_cache()
        return call_result.ClearCache(status=ClearCacheStatus.accepted)

    @on(Action.data_transfer)
    def on_data_transfer(self, vendor_id: str, **_: Any) -> call_result.DataTransfer:
        return call_result.DataTransfer(status=DataTransferStatus.unknown_vendor_id)

    @on(Action.get_diagnostics)
    def on_get_diagnostics(self, location: str, **_: Any) -> call_result.GetDiagnostics:
        return call_result.GetDiagnostics(file_name=self.station.get_diagnostics(location))

    @on(Action.update_firmware)
    def on_update_firmware(
        self, location: str, retrieve_date: str, **_: Any
    ) -> call_result.UpdateFirmware:
        self.station.update_firmware(location, retrieve_date)
        return call_result.UpdateFirmware()
