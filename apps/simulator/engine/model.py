"""What a simulated station is made of: its fixed description and its changing state."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from ocpp.v16.enums import ChargePointStatus

from apps.energy.allocator import PhaseWiring
from apps.simulator.engine.ev import Ev
from apps.simulator.engine.meter import MeterReading
from apps.simulator.engine.wiring import (
    PhaseCurrents,
    building_phase_currents_a,
    station_phase_currents_a,
)


@dataclass(frozen=True, slots=True)
class ConnectorSpec:
    """A connector as installed: its number, phase wiring and maximum current."""

    connector_id: int
    wiring: PhaseWiring = PhaseWiring.TRI123
    max_current_a: float = 32.0


@dataclass(frozen=True, slots=True)
class StationSpec:
    """What is fixed about a charge point.

    ``password`` is the Basic-auth password (security profiles 1-2; the
    user is the identity); ``configuration`` overrides configuration-key
    defaults, e.g. ``{"MeterValueSampleInterval": "5"}``; ``id_tags`` are the
    cards drivers badge here (empty: the fleet's cards). ``free_vend`` gives
    the station vendor keys to start charging on plug-in without a card.
    ``refuses_decreases`` makes it reject every TxProfile or
    ChargePointMaxProfile that would lower what a charging connector offers,
    as some real stations do: the central system must not count on it.
    """

    identity: str
    connectors: tuple[ConnectorSpec, ...] = (ConnectorSpec(1),)
    password: str | None = None
    vendor: str = "evce"
    model: str = "Simulated AC"
    firmware_version: str = "sim-1.0"
    configuration: Mapping[str, str] = field(default_factory=dict)
    id_tags: tuple[str, ...] = ()
    free_vend: bool = False
    refuses_decreases: bool = False


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where the central system listens: ``ws://host:port[/path]`` or ``wss://…``.

    The station connects to ``<url>/<identity>``. For ``wss`` the server
    certificate is checked against ``ca_file`` (else the system CAs); a client
    certificate is presented when given (security profile 3).
    """

    url: str
    ca_file: str | None = None
    client_cert_file: str | None = None
    client_key_file: str | None = None

    def station_url(self, identity: str) -> str:
        return f"{self.url.rstrip('/')}/{quote(identity, safe='*-_=+|@.')}"

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.url.startswith("wss://"):
            return None
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.client_cert_file:
            context.load_cert_chain(self.client_cert_file, self.client_key_file)
        return context


@dataclass(frozen=True, slots=True)
class StationTiming:
    """Timings of a station, in simulated seconds unless named ``_wall_s``."""

    step_s: float = 1.0
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 60.0
    reboot_s: float = 5.0
    boot_retry_s: float = 30.0
    unplug_after_stop_s: float = 30.0
    unplug_after_local_stop_s: float = 5.0
    leave_after_full_s: float = 600.0
    leave_after_rejection_s: float = 20.0
    diagnostics_upload_s: float = 5.0
    firmware_step_s: float = 10.0
    response_timeout_wall_s: float = 30.0
    open_timeout_wall_s: float = 10.0
    flush_timeout_wall_s: float = 5.0


class VisitState(StrEnum):
    PLUGGED = "plugged"
    AUTHORIZING = "authorizing"
    IN_TRANSACTION = "in_transaction"
    REJECTED = "rejected"
    FINISHED = "finished"


@dataclass(eq=False, slots=True)
class Visit:
    """An EV plugged into a connector, from plug-in to unplug."""

    ev: Ev
    id_tag: str
    plugged_at_s: float
    leave_at_s: float | None = None
    state: VisitState = VisitState.PLUGGED
    remote: bool = False
    charging_profile: Mapping[str, Any] | None = None
    unplug_at_s: float | None = None
    full_since_s: float | None = None
    attempt: int = 0


@dataclass(eq=False, slots=True)
class LocalTransaction:
    """A transaction as the station knows it; the id arrives with StartTransaction.conf."""

    connector_id: int
    id_tag: str
    started_at: datetime
    meter_start_wh: int
    begin: MeterReading
    transaction_id: int | None = None


@dataclass(eq=False, slots=True)
class ConnectorState:
    spec: ConnectorSpec
    energy_wh: float = 0.0
    status: str = ChargePointStatus.available
    operative: bool = True
    inoperative_scheduled: bool = False
    remote_start_pending: bool = False
    visit: Visit | None = None
    transaction: LocalTransaction | None = None
    offered_a: float = 0.0
    offered_phases: int = 3
    drawn_a: float = 0.0
    phases_used: int = 0
    next_sample_s: float = 0.0

    @property
    def connector_id(self) -> int:
        return self.spec.connector_id

    @property
    def station_currents_a(self) -> PhaseCurrents:
        """Current on the station's own L1-L3."""
        return station_phase_currents_a(self.drawn_a, self.phases_used)

    @property
    def building_currents_a(self) -> PhaseCurrents:
        """Current on the building's L1-L3, through the connector's wiring."""
        return building_phase_currents_a(self.spec.wiring, self.station_currents_a)
