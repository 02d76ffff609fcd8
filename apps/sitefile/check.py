"""Checking a site file: the whole YAML read, every problem reported with its path."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from apps.meters.modbus.registers import register_map_errors
from apps.meters.models import ConnectionType, Meter, MeterModel
from apps.rfid.models import AuthGroup, OfflineStrategy, OnlineMode
from apps.siteconfig.models import (
    FloorMode,
    Priority,
    ProductionMode,
    SiteSettings,
    SupervisionMode,
)
from apps.stations.models import CurrentType, PhaseWiring, SecurityProfile, identity_validator
from apps.supervision.models import (
    DEFAULT_MAX_ATTEMPTS,
    MAX_ATTEMPTS_RANGE,
    MESSAGE_TIMEOUT_RANGE_S,
    PING_INTERVAL_RANGE_S,
    AuthMode,
    Supervision,
    password_bytes,
    validate_ca_certificate,
    validate_cpo_url,
)
from apps.zones.models import (
    DAYS,
    MAX_EXTERNAL_INPUTS,
    MAX_TOU_PERIODS,
    MAX_TOU_SLOTS,
    InputKind,
    TouPeriod,
    TouSlot,
    Zone,
)

SECTIONS = (
    "site",
    "supervisions",
    "meter_models",
    "meters",
    "zones",
    "auth_groups",
    "stations",
    "cards",
    "tou_periods",
    "external_inputs",
)

# site-file key -> SiteSettings field, for the scalar site settings.
SITE_KEYS: dict[str, str] = {
    "name": "name",
    "floor": "floor_mode",
    "priority": "priority",
    "production": "production_mode",
    "supervision": "supervision_mode",
    "nominal_voltage_v": "nominal_voltage_v",
    "meter_poll_interval_ms": "meter_poll_interval_ms",
    "meter_lost_after_polls": "meter_lost_after_polls",
    "heartbeat_interval_s": "heartbeat_interval_s",
    "meter_value_sample_interval_s": "meter_value_sample_interval_s",
    "max_zones": "max_zones",
    "max_zone_levels": "max_zone_levels",
}
OPTIMISATION_KEYS = {
    "enabled": "optimisation_enabled",
    "reduction_trigger_a": "reduction_trigger_a",
    "reduction_gap_a": "reduction_gap_a",
    "increase_gap_a": "increase_gap_a",
}
IDLE_KEYS = {
    "enabled": "idle_suspension_enabled",
    "after_s": "idle_after_s",
    "wake_up_interval_s": "idle_wake_up_interval_s",
}

_SLOT_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]|24):([0-5]\d)$")


class SiteFileError(Exception):
    """The file cannot be imported; ``errors`` lists every problem with its path."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass
class ImportResult:
    site_name: str
    created: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)

    def count(self, kind: str, created: bool) -> None:
        bucket = self.created if created else self.updated
        bucket[kind] = bucket.get(kind, 0) + 1


# ---------------------------------------------------------------------------
# Reading values with paths
# ---------------------------------------------------------------------------


class Checker:
    """Collects problems with their path while reading the raw YAML tree."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def error(self, path: str, message: str) -> None:
        self.errors.append(f"{path or 'file'}: {message}")

    def mapping(
        self, node: Any, path: str, allowed: Iterable[str], required: Iterable[str] = ()
    ) -> dict | None:
        if not isinstance(node, dict):
            self.error(path, "must be a mapping (key: value)")
            return None
        allowed = tuple(allowed)
        for key in node:
            if key not in allowed:
                self.error(
                    _join(path, str(key)), f"unknown key (expected one of {', '.join(allowed)})"
                )
        for key in required:
            if node.get(key) is None:
                self.error(_join(path, key), "is required")
        return node

    def sequence(self, node: Any, path: str) -> list:
        if node is None:
            return []
        if not isinstance(node, list):
            self.error(path, "must be a list")
            return []
        return node

    def text(
        self,
        node: dict,
        key: str,
        path: str,
        *,
        max_length: int,
        required: bool = False,
        pattern: Callable[[str], str | None] | None = None,
    ) -> str | None:
        value = node.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            self.error(_join(path, key), "must be text")
            return None
        value = str(value)
        if required and not value.strip():
            self.error(_join(path, key), "must not be empty")
            return None
        if len(value) > max_length:
            self.error(_join(path, key), f"is longer than {max_length} characters")
            return None
        if pattern is not None:
            problem = pattern(value)
            if problem:
                self.error(_join(path, key), problem)
                return None
        return value

    def choice(self, node: dict, key: str, path: str, choices: Iterable[str]) -> str | None:
        value = node.get(key)
        if value is None:
            return None
        choices = tuple(choices)
        if value not in choices:
            self.error(_join(path, key), f"{value!r} is not one of {', '.join(choices)}")
            return None
        return value

    def moment(self, node: dict, key: str, path: str) -> datetime | None:
        """A date and time with its offset (YAML timestamp or ISO 8601 text); a date
        alone is the start of that day in the site's time zone."""
        value = node.get(key)
        if value is None:
            return None
        if isinstance(value, str):
            parsed = _date_or_none(value) or _datetime_or_none(value)
            if parsed is None:
                self.error(_join(path, key), "must be a date or a date and time (ISO 8601)")
                return None
            value = parsed
        if isinstance(value, datetime):
            if timezone.is_naive(value):
                self.error(_join(path, key), "needs a time zone offset, e.g. 2027-01-31T18:00Z")
                return None
            return value
        if isinstance(value, date):
            return timezone.make_aware(datetime.combine(value, time.min))
        self.error(_join(path, key), "must be a date or a date and time (ISO 8601)")
        return None

    def boolean(self, node: dict, key: str, path: str) -> bool | None:
        value = node.get(key)
        if value is None:
            return None
        if not isinstance(value, bool):
            self.error(_join(path, key), "must be true or false")
            return None
        return value

    def integer(self, node: dict, key: str, path: str, *, minimum: int, maximum: int) -> int | None:
        value = node.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(_join(path, key), "must be a whole number")
            return None
        if not minimum <= value <= maximum:
            self.error(_join(path, key), f"must be between {minimum} and {maximum}")
            return None
        return value

    def integers(
        self,
        node: dict,
        path: str,
        bounds: Iterable[tuple[str, int, int]],
        into: dict[str, Any],
        names: Mapping[str, str] | None = None,
    ) -> None:
        """Check the whole numbers of ``bounds`` (key, minimum, maximum); put the good ones
        in ``into``, under ``names[key]`` where given."""
        for key, low, high in bounds:
            value = self.integer(node, key, path, minimum=low, maximum=high)
            if value is not None:
                into[names[key] if names else key] = value

    def amps(
        self, node: dict, key: str, path: str, *, minimum: str = "0", maximum: str = "10000"
    ) -> Decimal | None:
        """A current (or %) with at most one decimal, as an exact Decimal."""
        value = node.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.error(_join(path, key), "must be a number")
            return None
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            number = Decimal("NaN")
        if not number.is_finite():
            self.error(_join(path, key), "must be a number")
            return None
        # The range first: quantizing a huge number exceeds the decimal precision.
        if not Decimal(minimum) <= number <= Decimal(maximum):
            self.error(_join(path, key), f"must be between {minimum} and {maximum}")
            return None
        if number != number.quantize(Decimal("0.1")):
            self.error(_join(path, key), "has more than one decimal")
            return None
        return number.quantize(Decimal("0.1"))


def _date_or_none(value: str) -> date | None:
    if len(value.strip()) != 10:  # a date alone, not the start of a date and time
        return None
    try:
        return parse_date(value.strip())
    except ValueError:
        return None


def _datetime_or_none(value: str) -> datetime | None:
    try:
        return parse_datetime(value.strip())
    except ValueError:
        return None


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _fmt_amps(value: Decimal) -> str:
    return f"{value.normalize():f}"


def _identity_problem(value: str) -> str | None:
    try:
        identity_validator(value)
    except ValidationError:
        return "must be 1–30 characters among letters, digits and * - _ = + | @ . (no spaces)"
    return None


def _id_tag_problem(value: str) -> str | None:
    if not re.fullmatch(r"[\x21-\x7e]{1,20}", value):
        return "must be 1–20 printable characters without spaces"
    return None


# ---------------------------------------------------------------------------
# The validated plan
# ---------------------------------------------------------------------------


@dataclass
class ZonePlan:
    path: str
    name: str
    parent: str | None
    level: int
    values: dict[str, Any]
    meter: str | None
    production_meter: str | None
    children: list[str] = field(default_factory=list)


@dataclass
class Plan:
    """The file, checked and normalised, ready to be applied."""

    site: dict[str, Any] = field(default_factory=dict)
    meter_models: list[tuple[str, dict]] = field(default_factory=list)
    meters: list[tuple[str, dict]] = field(default_factory=list)
    zones: list[ZonePlan] = field(default_factory=list)
    supervisions: list[tuple[str, dict]] = field(default_factory=list)
    auth_groups: list[tuple[str, dict]] = field(default_factory=list)
    # group name -> the supervision it names (None: local), with the entry's path
    group_supervisions: list[tuple[str, str, str | None]] = field(default_factory=list)
    stations: list[tuple[str, dict]] = field(default_factory=list)
    cards: list[tuple[str, dict]] = field(default_factory=list)
    tou_periods: list[tuple[str, dict]] = field(default_factory=list)
    external_inputs: list[tuple[str, dict]] = field(default_factory=list)


def parse_site_file(text: str, *, base_dir: Path | None = None) -> Plan:
    """Check a whole site file; raise ``SiteFileError`` listing every problem.

    ``base_dir`` is where files the site file names (a CA certificate) are
    read from; without it, they must be given inline.
    """
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "file"
        problem = getattr(exc, "problem", None) or str(exc)
        raise SiteFileError([f"{where}: not valid YAML ({problem})"]) from None
    if raw is None:
        raise SiteFileError(["file: is empty"])
    check = Checker()
    root = check.mapping(raw, "", SECTIONS)
    if root is None:
        raise SiteFileError(check.errors)
    plan = Plan()
    site_limits = _check_site(check, root.get("site"), plan)
    model_names = _check_meter_models(check, root.get("meter_models"), plan)
    meters = _check_meters(check, root.get("meters"), plan, model_names)
    zones = _check_zones(check, root.get("zones"), plan, meters, site_limits)
    supervisions = _check_supervisions(check, root.get("supervisions"), plan, base_dir)
    groups = _check_auth_groups(check, root.get("auth_groups"), plan, supervisions)
    _check_stations(check, root.get("stations"), plan, zones, groups)
    _check_cards(check, root.get("cards"), plan, groups)
    _check_tou(check, root.get("tou_periods"), plan, zones)
    _check_inputs(check, root.get("external_inputs"), plan, meters)
    _check_supervision_mode(check, plan, supervisions)
    if check.errors:
        raise SiteFileError(check.errors)
    return plan


def _check_site(check: Checker, node: Any, plan: Plan) -> tuple[int, int]:
    # Checking only reads: a fresh install's settings row is not created here.
    current = SiteSettings.objects.filter(pk=SiteSettings.SINGLETON_PK).first() or SiteSettings()
    limits = (current.max_zones, current.max_zone_levels)
    if node is None:
        return limits
    site = check.mapping(node, "site", (*SITE_KEYS, "optimisation", "idle_suspension"))
    if site is None:
        return limits
    values: dict[str, Any] = {}
    name = check.text(site, "name", "site", max_length=64, required=True)
    if name is not None:
        values["name"] = name
    for key, choices in (
        ("floor", FloorMode),
        ("priority", Priority),
        ("production", ProductionMode),
        ("supervision", SupervisionMode.values),
    ):
        value = check.choice(site, key, "site", choices)
        if value is not None:
            values[SITE_KEYS[key]] = value
    site_integers = (
        ("nominal_voltage_v", 100, 400),
        ("meter_poll_interval_ms", 250, 10000),
        ("meter_lost_after_polls", 1, 100),
        ("heartbeat_interval_s", 10, 86400),
        ("meter_value_sample_interval_s", 1, 3600),
        ("max_zones", 1, 1000),
        ("max_zone_levels", 1, 10),
    )
    check.integers(site, "site", site_integers, values, SITE_KEYS)
    optimisation = site.get("optimisation")
    if optimisation is not None and check.mapping(
        optimisation, "site.optimisation", OPTIMISATION_KEYS
    ):
        path = "site.optimisation"
        enabled = check.boolean(optimisation, "enabled", path)
        if enabled is not None:
            values["optimisation_enabled"] = enabled
        for key in ("reduction_trigger_a", "reduction_gap_a", "increase_gap_a"):
            value = check.amps(optimisation, key, path, maximum="100")
            if value is not None:
                values[key] = value
    idle = site.get("idle_suspension")
    if idle is not None and check.mapping(idle, "site.idle_suspension", IDLE_KEYS):
        path = "site.idle_suspension"
        enabled = check.boolean(idle, "enabled", path)
        if enabled is not None:
            values["idle_suspension_enabled"] = enabled
        after = check.integer(idle, "after_s", path, minimum=10, maximum=86400)
        if after is not None:
            values["idle_after_s"] = after
        wake = check.integer(idle, "wake_up_interval_s", path, minimum=60, maximum=86400)
        if wake is not None:
            values["idle_wake_up_interval_s"] = wake
    plan.site = values
    return (values.get("max_zones", limits[0]), values.get("max_zone_levels", limits[1]))


def _check_meter_models(check: Checker, node: Any, plan: Plan) -> set[str]:
    names = set(MeterModel.objects.values_list("name", flat=True))
    builtin = set(MeterModel.objects.filter(builtin=True).values_list("name", flat=True))
    seen: set[str] = set()
    for index, item in enumerate(check.sequence(node, "meter_models")):
        path = f"meter_models[{index}]"
        if not isinstance(item, dict):
            check.error(path, "must be a mapping (key: value)")
            continue
        problems = register_map_errors(item)
        check.errors.extend(f"{path}.{problem}" for problem in problems)
        name = item.get("name")
        if not isinstance(name, str):
            continue
        if name in seen:
            check.error(f"{path}.name", f"model {name!r} is defined twice")
        if name in builtin:
            check.error(f"{path}.name", f"{name!r} is a built-in model and cannot be redefined")
        seen.add(name)
        if not problems:
            plan.meter_models.append((path, item))
    return names | seen


def _check_meters(check: Checker, node: Any, plan: Plan, model_names: set[str]) -> dict[str, bool]:
    """Return every known meter name → whether it is a reporting meter."""
    known = dict(Meter.objects.values_list("name", "is_reporting"))
    seen: set[str] = set()
    keys = (
        "name",
        "model",
        "host",
        "port",
        "unit_id",
        "serial",
        "baudrate",
        "bytesize",
        "parity",
        "stopbits",
        "timeout_ms",
        "reporting",
        "enabled",
    )
    for index, item in enumerate(check.sequence(node, "meters")):
        path = f"meters[{index}]"
        meter = check.mapping(item, path, keys, required=("name", "model"))
        if meter is None:
            continue
        name = check.text(meter, "name", path, max_length=64, required=True)
        model = check.text(meter, "model", path, max_length=64)
        if model is not None and model not in model_names:
            check.error(f"{path}.model", f"unknown meter model {model!r}")
        if name is not None and name in seen:
            check.error(f"{path}.name", f"meter {name!r} is defined twice")
        host = check.text(meter, "host", path, max_length=253)
        serial = check.text(meter, "serial", path, max_length=200)
        if bool(host) == bool(serial):
            check.error(path, "give either host (Modbus TCP) or serial (Modbus RTU)")
        values: dict[str, Any] = {
            "connection_type": ConnectionType.RTU if serial else ConnectionType.TCP,
            "host": host or "",
            "serial_device": serial or "",
        }
        meter_integers = (
            ("port", 1, 65535),
            ("unit_id", 1, 255),
            ("baudrate", 1200, 921600),
            ("bytesize", 7, 8),
            ("stopbits", 1, 2),
            ("timeout_ms", 50, 30000),
        )
        check.integers(meter, path, meter_integers, values)
        parity = check.choice(meter, "parity", path, ("N", "E", "O"))
        if parity is not None:
            values["parity"] = parity
        reporting = check.boolean(meter, "reporting", path)
        values["is_reporting"] = bool(reporting)
        enabled = check.boolean(meter, "enabled", path)
        if enabled is not None:
            values["enabled"] = enabled
        if name is not None:
            seen.add(name)
            known[name] = bool(reporting)
            if model is not None:
                plan.meters.append((path, {"name": name, "model": model, **values}))
    return known


def _check_zones(
    check: Checker, node: Any, plan: Plan, meters: dict[str, bool], limits: tuple[int, int]
) -> dict[str, bool]:
    """Return every known zone name → whether it is terminal (may hold stations)."""
    max_zones, max_levels = limits
    names_in_file: dict[str, str] = {}
    meter_users: dict[str, str] = {}
    keys = (
        "name",
        "max_current_a",
        "meter",
        "degraded_current_a",
        "production_meter",
        "meter_net_of_production",
        "phase_imbalance_limit_a",
        "zones",
    )

    def visit(items: Any, path: str, parent: ZonePlan | None, level: int) -> None:
        for index, item in enumerate(check.sequence(items, path)):
            zpath = f"{path}[{index}]"
            zone = check.mapping(item, zpath, keys, required=("name", "max_current_a"))
            if zone is None:
                continue
            name = check.text(zone, "name", zpath, max_length=64, required=True)
            max_a = check.amps(zone, "max_current_a", zpath, minimum="0.1")
            degraded = check.amps(zone, "degraded_current_a", zpath)
            imbalance = check.amps(zone, "phase_imbalance_limit_a", zpath, minimum="1")
            if level > max_levels:
                check.error(zpath, f"is at level {level}; zones are limited to {max_levels} levels")
            if name is not None:
                if name in names_in_file:
                    check.error(
                        f"{zpath}.name",
                        f"zone {name!r} is already defined at {names_in_file[name]}",
                    )
                names_in_file.setdefault(name, zpath)
            if (
                parent is not None
                and max_a is not None
                and parent.values.get("max_current_a") is not None
            ):
                parent_max = parent.values["max_current_a"]
                if max_a > parent_max:
                    check.error(
                        f"{zpath}.max_current_a", f"exceeds parent's {_fmt_amps(parent_max)} A"
                    )
            if degraded is not None and max_a is not None and degraded > max_a:
                check.error(
                    f"{zpath}.degraded_current_a", f"exceeds the zone's {_fmt_amps(max_a)} A"
                )
            meter_refs: dict[str, str | None] = {}
            for key in ("meter", "production_meter"):
                ref = check.text(zone, key, zpath, max_length=64)
                meter_refs[key] = ref
                if ref is None:
                    continue
                if ref not in meters:
                    check.error(f"{zpath}.{key}", f"unknown meter {ref!r}")
                elif meters[ref]:
                    check.error(f"{zpath}.{key}", f"meter {ref!r} is a reporting meter")
                elif ref in meter_users:
                    check.error(
                        f"{zpath}.{key}", f"meter {ref!r} already serves {meter_users[ref]}"
                    )
                else:
                    meter_users[ref] = zpath
            net = check.boolean(zone, "meter_net_of_production", zpath)
            if net and (meter_refs["meter"] is None or meter_refs["production_meter"] is None):
                check.error(
                    f"{zpath}.meter_net_of_production",
                    "needs the zone's meter and its production_meter (the production "
                    "the meter nets out)",
                )
            values = {
                "max_current_a": max_a,
                "degraded_current_a": degraded or Decimal("0"),
                "meter_net_of_production": bool(net),
                "phase_imbalance_limit_a": imbalance,
            }
            zplan = ZonePlan(
                zpath,
                name or "",
                parent.name if parent else None,
                level,
                values,
                meter_refs["meter"],
                meter_refs["production_meter"],
            )
            if name is not None:
                plan.zones.append(zplan)
                if parent is not None:
                    parent.children.append(name)
            visit(zone.get("zones"), f"{zpath}.zones", zplan, level + 1)

    visit(node, "zones", None, 1)
    existing = dict.fromkeys(Zone.objects.values_list("name", flat=True), True)
    for parent_id in Zone.objects.exclude(parent=None).values_list("parent__name", flat=True):
        existing[parent_id] = False
    total = len(set(existing) | set(names_in_file))
    if total > max_zones:
        check.error("zones", f"the site would have {total} zones; the limit is {max_zones}")
    known = existing
    for zplan in plan.zones:
        known[zplan.name] = not zplan.children
    return known


def _check_auth_groups(
    check: Checker, node: Any, plan: Plan, supervisions: dict[str, str]
) -> set[str]:
    names = set(AuthGroup.objects.values_list("name", flat=True))
    seen: set[str] = set()
    for index, item in enumerate(check.sequence(node, "auth_groups")):
        path = f"auth_groups[{index}]"
        group = check.mapping(
            item,
            path,
            ("name", "online", "offline", "plug_and_charge_id_tag", "supervision"),
            required=("name",),
        )
        if group is None:
            continue
        name = check.text(group, "name", path, max_length=64, required=True)
        online = check.choice(group, "online", path, OnlineMode.values)
        offline = check.choice(group, "offline", path, OfflineStrategy.values)
        tag = check.text(
            group, "plug_and_charge_id_tag", path, max_length=20, pattern=_id_tag_problem
        )
        supervision = check.text(group, "supervision", path, max_length=64)
        if supervision is not None and supervision not in supervisions:
            check.error(f"{path}.supervision", f"unknown supervision {supervision!r}")
        if name is None:
            continue
        if name in seen:
            check.error(f"{path}.name", f"group {name!r} is defined twice")
        seen.add(name)
        values = {"name": name}
        if online:
            values["online_mode"] = online
        if offline:
            values["offline_strategy"] = offline
        if tag is not None:
            values["plug_and_charge_id_tag"] = tag
        plan.auth_groups.append((path, values))
        plan.group_supervisions.append((path, name, supervision))
    return names | seen


def _check_stations(
    check: Checker, node: Any, plan: Plan, zones: dict[str, bool], groups: set[str]
) -> None:
    seen: set[str] = set()
    keys = (
        "identity",
        "name",
        "zone",
        "group",
        "vip",
        "security_profile",
        "authorization_key",
        "web_page_url",
        "cpo_password",
        "cpo_password_hex",
        "connectors",
    )
    for index, item in enumerate(check.sequence(node, "stations")):
        path = f"stations[{index}]"
        station = check.mapping(
            item, path, keys, required=("identity", "name", "zone", "connectors")
        )
        if station is None:
            continue
        identity = check.text(station, "identity", path, max_length=30, pattern=_identity_problem)
        name = check.text(station, "name", path, max_length=64, required=True)
        zone = check.text(station, "zone", path, max_length=64)
        group = check.text(station, "group", path, max_length=64)
        vip = check.boolean(station, "vip", path)
        profile = check.integer(station, "security_profile", path, minimum=0, maximum=3)
        key = check.text(station, "authorization_key", path, max_length=40)
        url = check.text(station, "web_page_url", path, max_length=200)
        cpo_password = _check_password(
            check, station, path, text_key="cpo_password", hex_key="cpo_password_hex"
        )
        if identity is not None:
            if identity.lower() in seen:
                check.error(f"{path}.identity", f"station {identity!r} is defined twice")
            seen.add(identity.lower())
        if zone is not None:
            if zone not in zones:
                check.error(f"{path}.zone", f"unknown zone {zone!r}")
            elif not zones[zone]:
                check.error(
                    f"{path}.zone",
                    f"zone {zone!r} has sub-zones; stations go on terminal zones only",
                )
        if group is not None and group not in groups:
            check.error(f"{path}.group", f"unknown authentication group {group!r}")
        connectors = _check_connectors(check, station.get("connectors"), f"{path}.connectors")
        if None in (identity, name, zone) or connectors is None:
            continue
        values = {
            "identity": identity,
            "name": name,
            "zone": zone,
            "group": group,
            "vip": bool(vip),
            "security_profile": profile if profile is not None else SecurityProfile.NONE,
            "authorization_key": key,
            "web_page_url": url or "",
            "cpo_password": cpo_password,
            "connectors": connectors,
        }
        plan.stations.append((path, values))


def _check_connectors(check: Checker, node: Any, path: str) -> list[dict] | None:
    items = check.sequence(node, path)
    if not items:
        check.error(path, "a station needs at least one connector")
        return None
    result: list[dict] = []
    ids: set[int] = set()
    ok = True
    for index, item in enumerate(items):
        cpath = f"{path}[{index}]"
        connector = check.mapping(
            item, cpath, ("id", "type", "phases", "max_current_a", "max_power_w"), required=("id",)
        )
        if connector is None:
            ok = False
            continue
        number = check.integer(connector, "id", cpath, minimum=1, maximum=99)
        kind = check.choice(connector, "type", cpath, CurrentType) or CurrentType.AC
        phases = check.choice(connector, "phases", cpath, PhaseWiring)
        max_a = check.amps(connector, "max_current_a", cpath, minimum="6", maximum="1000")
        max_w = check.integer(connector, "max_power_w", cpath, minimum=1000, maximum=1_000_000)
        if number is not None:
            if number in ids:
                check.error(f"{cpath}.id", f"connector {number} is defined twice")
            ids.add(number)
        if kind == CurrentType.AC and connector.get("max_current_a") is None:
            check.error(f"{cpath}.max_current_a", "is required for an AC connector")
            ok = False
        if kind == CurrentType.DC and connector.get("max_power_w") is None:
            check.error(f"{cpath}.max_power_w", "is required for a DC connector")
            ok = False
        if number is None:
            ok = False
            continue
        result.append(
            {
                "connector_id": number,
                "current_type": kind,
                "phase_wiring": phases or PhaseWiring.TRI123,
                "max_current_a": max_a if kind == CurrentType.AC else None,
                "max_power_w": max_w if kind == CurrentType.DC else None,
            }
        )
    return result if ok else None


def _check_cards(check: Checker, node: Any, plan: Plan, groups: set[str]) -> None:
    seen: set[str] = set()
    keys = ("id_tag", "authorized", "vip", "comment", "groups", "parent_id_tag", "expires_at")
    for index, item in enumerate(check.sequence(node, "cards")):
        path = f"cards[{index}]"
        card = check.mapping(item, path, keys, required=("id_tag",))
        if card is None:
            continue
        id_tag = check.text(card, "id_tag", path, max_length=20, pattern=_id_tag_problem)
        authorized = check.boolean(card, "authorized", path)
        vip = check.boolean(card, "vip", path)
        comment = check.text(card, "comment", path, max_length=50)
        parent = check.text(card, "parent_id_tag", path, max_length=20, pattern=_id_tag_problem)
        expires_at = check.moment(card, "expires_at", path)
        card_groups = []
        for gindex, group in enumerate(check.sequence(card.get("groups"), f"{path}.groups")):
            if not isinstance(group, str) or group not in groups:
                check.error(f"{path}.groups[{gindex}]", f"unknown authentication group {group!r}")
            else:
                card_groups.append(group)
        if id_tag is None:
            continue
        if id_tag.lower() in seen:
            check.error(f"{path}.id_tag", f"card {id_tag!r} is defined twice")
        seen.add(id_tag.lower())
        plan.cards.append(
            (
                path,
                {
                    "id_tag": id_tag,
                    "authorized": True if authorized is None else authorized,
                    "vip": bool(vip),
                    "comment": comment or "",
                    "parent_id_tag": parent or "",
                    "expires_at": expires_at,
                    "groups": card_groups,
                },
            )
        )


def _parse_slot(value: Any) -> tuple[time, time] | None:
    if not isinstance(value, str):
        return None
    match = _SLOT_RE.match(value.strip())
    if not match:
        return None
    start_h, start_m, end_h, end_m = (int(g) for g in match.groups())
    if end_h == 24:
        if end_m:
            return None
        end_h = 0
    start, end = time(start_h, start_m), time(end_h, end_m)
    return None if start == end else (start, end)


def _check_tou(check: Checker, node: Any, plan: Plan, zones: dict[str, bool]) -> None:
    items = check.sequence(node, "tou_periods")
    existing = set(TouPeriod.objects.values_list("name", flat=True))
    names_in_file = {
        item["name"]
        for item in items
        if isinstance(item, dict) and isinstance(item.get("name"), str)
    }
    if len(existing | names_in_file) > MAX_TOU_PERIODS:
        check.error("tou_periods", f"at most {MAX_TOU_PERIODS} time-of-use periods")
    other_slots = TouSlot.objects.exclude(period__name__in=names_in_file).count()
    total_slots = other_slots
    seen: set[str] = set()
    for index, item in enumerate(items):
        path = f"tou_periods[{index}]"
        period = check.mapping(
            item,
            path,
            ("name", "enabled", "days", "slots", "max_percent", "zones"),
            required=("name", "days", "slots", "max_percent"),
        )
        if period is None:
            continue
        name = check.text(period, "name", path, max_length=32, required=True)
        enabled = check.boolean(period, "enabled", path)
        percent = check.integer(period, "max_percent", path, minimum=0, maximum=100)
        days = []
        for dindex, day in enumerate(check.sequence(period.get("days"), f"{path}.days")):
            if day not in DAYS:
                check.error(f"{path}.days[{dindex}]", f"{day!r} is not one of {', '.join(DAYS)}")
            elif day in days:
                check.error(f"{path}.days[{dindex}]", f"{day!r} is listed twice")
            else:
                days.append(day)
        slots = []
        for sindex, raw_slot in enumerate(check.sequence(period.get("slots"), f"{path}.slots")):
            slot = _parse_slot(raw_slot)
            if slot is None:
                check.error(
                    f"{path}.slots[{sindex}]", f'{raw_slot!r} is not a slot like "07:00-10:00"'
                )
            else:
                slots.append(slot)
        total_slots += len(slots)
        period_zones = []
        for zindex, zone in enumerate(check.sequence(period.get("zones"), f"{path}.zones")):
            if not isinstance(zone, str) or zone not in zones:
                check.error(f"{path}.zones[{zindex}]", f"unknown zone {zone!r}")
            else:
                period_zones.append(zone)
        if name is None:
            continue
        if name in seen:
            check.error(f"{path}.name", f"period {name!r} is defined twice")
        seen.add(name)
        if percent is not None and days and slots:
            plan.tou_periods.append(
                (
                    path,
                    {
                        "name": name,
                        "enabled": True if enabled is None else enabled,
                        "days": [d for d in DAYS if d in days],
                        "max_percent": percent,
                        "slots": slots,
                        "zones": period_zones,
                    },
                )
            )
    if total_slots > MAX_TOU_SLOTS:
        check.error(
            "tou_periods", f"{total_slots} time slots in total; the limit is {MAX_TOU_SLOTS}"
        )


def _check_inputs(check: Checker, node: Any, plan: Plan, meters: dict[str, bool]) -> None:
    seen: set[int] = set()
    keys = (
        "number",
        "name",
        "enabled",
        "percent",
        "source",
        "device",
        "address",
        "active_when_off",
    )
    for index, item in enumerate(check.sequence(node, "external_inputs")):
        path = f"external_inputs[{index}]"
        entry = check.mapping(item, path, keys, required=("number", "name", "percent"))
        if entry is None:
            continue
        number = check.integer(entry, "number", path, minimum=1, maximum=MAX_EXTERNAL_INPUTS)
        name = check.text(entry, "name", path, max_length=64, required=True)
        enabled = check.boolean(entry, "enabled", path)
        percent = check.integer(entry, "percent", path, minimum=0, maximum=99)
        source = check.choice(entry, "source", path, InputKind.values) or InputKind.DISCRETE_INPUT
        device = check.text(entry, "device", path, max_length=64)
        address = check.integer(entry, "address", path, minimum=0, maximum=65535)
        active_when_off = check.boolean(entry, "active_when_off", path)
        if source != InputKind.API:
            if device is None:
                check.error(f"{path}.device", "is required for a Modbus input")
            elif device not in meters:
                check.error(f"{path}.device", f"unknown meter {device!r}")
            if address is None and entry.get("address") is None:
                check.error(f"{path}.address", "is required for a Modbus input")
        if number is not None:
            if number in seen:
                check.error(f"{path}.number", f"input {number} is defined twice")
            seen.add(number)
        if None not in (number, name, percent):
            plan.external_inputs.append(
                (
                    path,
                    {
                        "number": number,
                        "name": name,
                        "enabled": True if enabled is None else enabled,
                        "percent": percent,
                        "kind": source,
                        "device": device if source != InputKind.API else None,
                        "address": address if source != InputKind.API else None,
                        "active_when_off": bool(active_when_off),
                    },
                )
            )


# ---------------------------------------------------------------------------
# Remote supervision (SPEC §6)
# ---------------------------------------------------------------------------

SUPERVISION_KEYS = (
    "name",
    "url",
    "ping_interval_s",
    "message_timeout_s",
    "forward_security_events",
    "auth",
    "password",
    "password_hex",
    "ca_certificate",
    "max_attempts",
)


def _check_password(
    check: Checker, node: dict, path: str, *, text_key: str, hex_key: str
) -> dict[str, str] | None:
    """A password given as ASCII text or hex: the service's arguments, or None."""
    given = {
        service_key: node[key]
        for key, service_key in ((text_key, "password"), (hex_key, "password_hex"))
        if node.get(key) is not None
    }
    if not given:
        return None
    for key, service_key in ((text_key, "password"), (hex_key, "password_hex")):
        if service_key in given and not isinstance(given[service_key], str):
            check.error(_join(path, key), "must be text (quote it)")
            return None
    try:
        password_bytes(**given)
    except ValidationError as exc:
        names = {"password": text_key, "password_hex": hex_key}
        for field_name, messages in exc.message_dict.items():
            for message in messages:
                check.error(_join(path, names.get(field_name, text_key)), message)
        return None
    return given


def _certificate_text(check: Checker, node: dict, path: str, base_dir: Path | None) -> str | None:
    """The CA certificate, given inline (PEM) or as a file beside the site file."""
    value = check.text(node, "ca_certificate", path, max_length=100_000)
    if value is None:
        return None
    where = _join(path, "ca_certificate")
    if "-----BEGIN" not in value:
        if base_dir is None:
            check.error(where, "give the certificate inline (PEM): no folder to read it from")
            return None
        try:
            value = (base_dir / value).read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            check.error(where, f"cannot read {value!r}: {getattr(exc, 'strerror', None) or exc}")
            return None
    try:
        validate_ca_certificate(value)
    except ValidationError as exc:
        check.error(where, exc.messages[0])
        return None
    return value


def _check_supervisions(
    check: Checker, node: Any, plan: Plan, base_dir: Path | None
) -> dict[str, str]:
    """Return every known supervision name → its authentication mode."""
    stored = {s.name: s for s in Supervision.objects.all()}
    known = {name: s.auth for name, s in stored.items()}
    seen: set[str] = set()
    for index, item in enumerate(check.sequence(node, "supervisions")):
        path = f"supervisions[{index}]"
        entry = check.mapping(item, path, SUPERVISION_KEYS, required=("name", "url"))
        if entry is None:
            continue
        errors_before = len(check.errors)
        name = check.text(entry, "name", path, max_length=64, required=True)
        url = check.text(entry, "url", path, max_length=200, pattern=_url_problem)
        values: dict[str, Any] = {}
        check.integers(
            entry,
            path,
            (
                ("ping_interval_s", *PING_INTERVAL_RANGE_S),
                ("message_timeout_s", *MESSAGE_TIMEOUT_RANGE_S),
                ("max_attempts", *MAX_ATTEMPTS_RANGE),
            ),
            values,
        )
        forward = check.boolean(entry, "forward_security_events", path)
        auth = check.choice(entry, "auth", path, AuthMode.values) or AuthMode.NONE
        password = _check_password(check, entry, path, text_key="password", hex_key="password_hex")
        certificate = _certificate_text(check, entry, path, base_dir)
        if password is not None and auth != AuthMode.SHARED:
            check.error(_join(path, "password"), "is used with auth: shared only")
        previous = stored.get(name) if name else None
        if (
            auth == AuthMode.SHARED
            and entry.get("password") is None
            and entry.get("password_hex") is None
            and (previous is None or not previous.password_encrypted)
        ):
            check.error(
                _join(path, "password"),
                "is required with auth: shared (passwords are never exported)",
            )
        if certificate and url and not url.startswith("wss://"):
            check.error(_join(path, "ca_certificate"), "is used with a wss:// url only")
        if name is not None:
            if name in seen:
                check.error(f"{path}.name", f"supervision {name!r} is defined twice")
            seen.add(name)
            known[name] = auth
        if len(check.errors) > errors_before or None in (name, url):
            continue
        values.update(
            name=name,
            url=url,
            forward_security_events=bool(forward),
            auth=auth,
            ca_certificate=certificate or "",
        )
        values.setdefault("ping_interval_s", 30)
        values.setdefault("message_timeout_s", 30)
        values.setdefault("max_attempts", DEFAULT_MAX_ATTEMPTS)
        plan.supervisions.append((path, {**values, "password": password}))
    return known


def _url_problem(value: str) -> str | None:
    try:
        validate_cpo_url(value)
    except ValidationError:
        return "must be a ws:// or wss:// URL with a host"
    return None


def _check_supervision_mode(check: Checker, plan: Plan, supervisions: dict[str, str]) -> None:
    """``unique`` relays every station to one supervision: there must be exactly one."""
    current = SiteSettings.objects.filter(pk=SiteSettings.SINGLETON_PK).first() or SiteSettings()
    mode = plan.site.get("supervision_mode", current.supervision_mode)
    if mode == SupervisionMode.UNIQUE and len(supervisions) != 1:
        check.error(
            "site.supervision",
            f"'unique' relays every station to one supervision; the site would have "
            f"{len(supervisions)}",
        )
