"""Exporting the configuration as a site file (no secrets), in the shape import reads."""

from __future__ import annotations

from datetime import UTC
from decimal import Decimal
from typing import Any

import yaml

from apps.meters.models import ConnectionType, Meter, MeterModel
from apps.rfid.models import AuthGroup, Card
from apps.siteconfig.models import SiteSettings
from apps.sitefile.check import IDLE_KEYS, OPTIMISATION_KEYS, SITE_KEYS
from apps.stations.models import CurrentType, Station, StationState
from apps.supervision.models import DEFAULT_MAX_ATTEMPTS, GroupSupervision, Supervision
from apps.zones.models import DAYS, ExternalInput, InputKind, TouPeriod, Zone

# ---------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------


class _Block(dict):
    """A mapping written in block style (it may hold a multi-line text)."""


class _Dumper(yaml.SafeDumper):
    """The safe dumper, writing multi-line texts (certificates) as literal blocks."""


def _represent_text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_text)
_Dumper.add_representer(
    _Block, lambda dumper, value: dumper.represent_mapping("tag:yaml.org,2002:map", value, False)
)


def _number(value: Decimal | None) -> int | float | None:
    if value is None:
        return None
    return int(value) if value == value.to_integral_value() else float(value)


def _compact(values: dict[str, Any], defaults: dict[str, Any] | None = None) -> dict[str, Any]:
    """Drop empty optional values (and values equal to their default) for a readable file."""
    defaults = defaults or {}
    return {
        k: v
        for k, v in values.items()
        if v not in (None, "", []) and defaults.get(k, object()) != v
    }


def site_export() -> str:
    """The current configuration as a site file (no secrets)."""
    site = SiteSettings.load()
    doc: dict[str, Any] = {
        "site": {key: _plain(getattr(site, attr)) for key, attr in SITE_KEYS.items()}
    }
    doc["site"]["optimisation"] = {
        key: _plain(getattr(site, attr)) for key, attr in OPTIMISATION_KEYS.items()
    }
    doc["site"]["idle_suspension"] = {key: getattr(site, attr) for key, attr in IDLE_KEYS.items()}

    supervisions = []
    for supervision in Supervision.objects.order_by("name"):
        # Passwords are never exported: the file says only how to authenticate.
        entry = _Block(
            {
                "name": supervision.name,
                "url": supervision.url,
                "ping_interval_s": supervision.ping_interval_s,
                "message_timeout_s": supervision.message_timeout_s,
                "forward_security_events": supervision.forward_security_events,
                "auth": supervision.auth,
            }
        )
        if supervision.ca_certificate:
            entry["ca_certificate"] = supervision.ca_certificate
        if supervision.max_attempts != DEFAULT_MAX_ATTEMPTS:
            entry["max_attempts"] = supervision.max_attempts
        supervisions.append(entry)
    if supervisions:
        doc["supervisions"] = supervisions

    custom_models = MeterModel.objects.filter(builtin=False).order_by("name")
    if custom_models:
        doc["meter_models"] = [m.as_json() for m in custom_models]
    meters = []
    for meter in Meter.objects.select_related("model").order_by("name"):
        entry: dict[str, Any] = {"name": meter.name, "model": meter.model.name}
        if meter.connection_type == ConnectionType.TCP:
            entry.update(host=meter.host, port=meter.port)
        else:
            entry.update(
                serial=meter.serial_device,
                baudrate=meter.baudrate,
                bytesize=meter.bytesize,
                parity=meter.parity,
                stopbits=meter.stopbits,
            )
        entry.update(unit_id=meter.unit_id, timeout_ms=meter.timeout_ms)
        entry.update(_compact({"reporting": meter.is_reporting or None}))
        if not meter.enabled:
            entry["enabled"] = False
        meters.append(entry)
    if meters:
        doc["meters"] = meters

    zones = list(Zone.objects.select_related("meter", "production_meter").order_by("name"))
    children: dict[int | None, list[Zone]] = {}
    for zone in zones:
        children.setdefault(zone.parent_id, []).append(zone)

    def zone_entry(zone: Zone) -> dict[str, Any]:
        entry = _compact(
            {
                "name": zone.name,
                "max_current_a": _number(zone.max_current_a),
                "meter": zone.meter.name if zone.meter else None,
                "degraded_current_a": _number(zone.degraded_current_a)
                if zone.meter or zone.degraded_current_a
                else None,
                "production_meter": zone.production_meter.name if zone.production_meter else None,
                "meter_net_of_production": zone.meter_net_of_production or None,
                "phase_imbalance_limit_a": _number(zone.phase_imbalance_limit_a),
            }
        )
        sub = [zone_entry(child) for child in children.get(zone.pk, [])]
        if sub:
            entry["zones"] = sub
        return entry

    if zones:
        doc["zones"] = [zone_entry(zone) for zone in children.get(None, [])]
    group_cpo = dict(GroupSupervision.objects.values_list("group_id", "supervision__name"))
    groups = [
        _compact(
            {
                "name": g.name,
                "online": g.online_mode,
                "offline": g.offline_strategy,
                "plug_and_charge_id_tag": g.plug_and_charge_id_tag,
                "supervision": group_cpo.get(g.pk),
            }
        )
        for g in AuthGroup.objects.order_by("name")
    ]
    if groups:
        doc["auth_groups"] = groups
    stations = []
    for station in (
        Station.objects.filter(state=StationState.INSTALLED)
        .select_related("zone", "auth_group")
        .prefetch_related("connectors")
        .order_by("identity")
    ):
        entry = _compact(
            {
                "identity": station.identity,
                "name": station.name,
                "zone": station.zone.name,
                "group": station.auth_group.name if station.auth_group else None,
                "vip": station.vip,
                "security_profile": station.security_profile or None,
                "web_page_url": station.web_page_url,
            }
        )
        entry["vip"] = station.vip
        entry["connectors"] = [
            _compact(
                {
                    "id": c.connector_id,
                    "type": c.current_type if c.current_type != CurrentType.AC else None,
                    "phases": c.phase_wiring,
                    "max_current_a": _number(c.max_current_a),
                    "max_power_w": c.max_power_w,
                }
            )
            for c in sorted(station.connectors.all(), key=lambda c: c.connector_id)
        ]
        stations.append(entry)
    if stations:
        doc["stations"] = stations
    cards = []
    for card in Card.objects.prefetch_related("groups").order_by("id_tag"):
        entry = {"id_tag": card.id_tag, "authorized": card.authorized, "vip": card.vip}
        entry.update(_compact({"comment": card.comment, "parent_id_tag": card.parent_id_tag}))
        if card.expires_at is not None:
            entry["expires_at"] = card.expires_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
        entry["groups"] = sorted(g.name for g in card.groups.all())
        cards.append(entry)
    if cards:
        doc["cards"] = cards
    periods = []
    for period in TouPeriod.objects.prefetch_related("slots", "zones").order_by("name"):
        entry = {"name": period.name}
        if not period.enabled:
            entry["enabled"] = False
        entry.update(
            {
                "days": [d for d in DAYS if d in period.days],
                "slots": [
                    f"{s.start:%H:%M}-{s.end:%H:%M}"
                    for s in sorted(period.slots.all(), key=lambda s: s.start)
                ],
                "max_percent": period.max_percent,
            }
        )
        zone_names = sorted(z.name for z in period.zones.all())
        if zone_names:
            entry["zones"] = zone_names
        periods.append(entry)
    if periods:
        doc["tou_periods"] = periods
    inputs = []
    for entry_obj in ExternalInput.objects.select_related("device").order_by("number"):
        entry = {"number": entry_obj.number, "name": entry_obj.name}
        if not entry_obj.enabled:
            entry["enabled"] = False
        entry.update({"percent": entry_obj.percent, "source": entry_obj.kind})
        if entry_obj.kind != InputKind.API:
            entry.update(device=entry_obj.device.name, address=entry_obj.address)
        if entry_obj.active_when_off:
            entry["active_when_off"] = True
        inputs.append(entry)
    if inputs:
        doc["external_inputs"] = inputs
    return yaml.dump(
        doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=None, width=110
    )


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return _number(value)
    if isinstance(value, str):
        # A settings row just created holds its defaults as choice enums
        # (str subclasses), which the YAML safe dumper refuses.
        return str(value)
    return value
