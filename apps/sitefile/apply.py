"""Applying a checked site file through the services of each app, in one transaction."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q

from apps.devicelog.models import EventCategory
from apps.devicelog.services import device_log_write
from apps.meters.models import Meter, MeterModel
from apps.meters.services import meter_model_save, meter_save
from apps.rfid.models import AuthGroup, Card
from apps.rfid.services import (
    announce_groups_changed,
    auth_group_create,
    auth_group_update,
    card_create,
    card_update,
)
from apps.siteconfig.models import ProductionMode, SiteSettings, SupervisionMode
from apps.siteconfig.services import site_settings_update
from apps.sitefile.check import ImportResult, Plan, SiteFileError, parse_site_file
from apps.stations.models import Station, StationState
from apps.stations.services import (
    ConnectorSpec,
    station_create,
    station_install,
    station_update,
)
from apps.supervision.models import Supervision
from apps.supervision.services import (
    group_supervision_set,
    station_cpo_password_set,
    supervision_save,
)
from apps.zones.models import ExternalInput, TouPeriod, Zone
from apps.zones.selectors import zones_without_production_meter
from apps.zones.services import external_input_save, tou_period_save, zone_create, zone_update

# Applying a plan: every object goes through its app's services, the same
# write path as the admin's, so the same rules hold and every change is
# logged and announced (after commit) the same way.


class _Applier:
    """Calls the services, turning their ``ValidationError`` into errors with file paths."""

    def __init__(self, result: ImportResult, user) -> None:
        self.result = result
        self.user = user
        self.errors: list[str] = []

    def call(self, path: str, kind: str, created: bool | None, service, /, *args, **kwargs):
        """Run ``service``; on success count the object (``created`` None: the service says)."""
        try:
            value = service(*args, user=self.user, **kwargs)
        except ValidationError as exc:
            self.add_errors(path, exc)
            return None
        if created is None:
            value, created = value
        self.result.count(kind, created)
        return value

    def add_errors(self, path: str, exc: ValidationError) -> None:
        if not hasattr(exc, "error_dict"):
            self.errors.extend(f"{path}: {message}" for message in exc.messages)
            return
        for field_name, messages in exc.message_dict.items():
            where = path if field_name == "__all__" else f"{path}.{field_name}"
            self.errors.extend(f"{where}: {message}" for message in messages)


def apply_plan(plan: Plan, *, user=None) -> ImportResult:
    """Write a checked plan; raise ``SiteFileError`` (and roll back) if a service refuses it."""
    site_values = dict(plan.site)
    # "Local only" depends on the zones and stations the file brings: it is
    # set (and checked) once they are in place.
    production_mode = site_values.pop("production_mode", SiteSettings.load().production_mode)
    if production_mode != ProductionMode.LOCAL:
        site_values["production_mode"] = production_mode
    # "One CPO for all stations" needs the one supervision the file may bring: it is set
    # once that is in place (other modes first, so that the file may add supervisions).
    supervision_mode = None
    if site_values.get("supervision_mode") == SupervisionMode.UNIQUE:
        supervision_mode = site_values.pop("supervision_mode")
    result = ImportResult(site_name=site_values.get("name") or SiteSettings.load().name)
    applier = _Applier(result, user)
    applier.call("site", "site", False, site_settings_update, **site_values)

    models_by_name = {m.name: m for m in MeterModel.objects.all()}
    for path, data in plan.meter_models:
        model = models_by_name.get(data["name"])
        model = applier.call(
            path,
            "meter_models",
            model is None,
            meter_model_save,
            model,
            name=data["name"],
            description=data.get("description", ""),
            register_map=data["registers"],
        )
        if model is not None:
            models_by_name[model.name] = model
    meters_by_name = {m.name: m for m in Meter.objects.all()}
    for path, data in plan.meters:
        values = {**data, "model": models_by_name.get(data["model"])}
        meter = applier.call(
            path, "meters", None, meter_save, meters_by_name.get(data["name"]), **values
        )
        if meter is not None:
            meters_by_name[meter.name] = meter

    _release_moving_meters(plan, applier)
    zones_by_name = {z.name: z for z in Zone.objects.all()}
    for zplan in plan.zones:  # parents come before their children
        values = {
            **zplan.values,
            "name": zplan.name,
            "parent": zones_by_name.get(zplan.parent) if zplan.parent else None,
            "meter": meters_by_name.get(zplan.meter) if zplan.meter else None,
            "production_meter": meters_by_name.get(zplan.production_meter)
            if zplan.production_meter
            else None,
        }
        zone = zones_by_name.get(zplan.name)
        if zone is None:
            zone = applier.call(zplan.path, "zones", True, zone_create, **values)
        else:
            zone = applier.call(zplan.path, "zones", False, zone_update, zone, **values)
        if zone is not None:
            zones_by_name[zone.name] = zone

    supervisions_by_name = {s.name: s for s in Supervision.objects.all()}
    for path, data in plan.supervisions:
        values = {k: v for k, v in data.items() if k != "password"}
        supervision = applier.call(
            path,
            "supervisions",
            None,
            supervision_save,
            supervisions_by_name.get(data["name"]),
            **(data["password"] or {}),
            **values,
        )
        if supervision is not None:
            supervisions_by_name[supervision.name] = supervision

    if supervision_mode is not None and not applier.errors:
        try:  # the settings row, already counted above
            site_settings_update(supervision_mode=supervision_mode, user=user)
        except ValidationError as exc:
            applier.add_errors("site", exc)

    groups_by_name = {g.name: g for g in AuthGroup.objects.all()}
    for path, data in plan.auth_groups:
        group = groups_by_name.get(data["name"])
        if group is None:
            group = applier.call(path, "auth_groups", True, auth_group_create, **data)
        else:
            group = applier.call(path, "auth_groups", False, auth_group_update, group=group, **data)
        if group is not None:
            groups_by_name[group.name] = group

    for path, group_name, supervision_name in plan.group_supervisions:
        group = groups_by_name.get(group_name)
        if group is None:
            continue
        try:
            changed = group_supervision_set(
                group=group,
                supervision=supervisions_by_name.get(supervision_name or ""),
                user=user,
            )
        except ValidationError as exc:
            applier.add_errors(f"{path}.supervision", exc)
            continue
        if changed:
            result.count("group_supervisions", False)

    for path, data in plan.stations:
        _apply_station(applier, path, data, zones_by_name, groups_by_name)

    for path, data in plan.cards:
        card = Card.objects.filter(id_tag__iexact=data["id_tag"]).first()
        values = {**data, "groups": [groups_by_name[g] for g in data["groups"]]}
        if card is None:
            applier.call(path, "cards", True, card_create, **values)
        else:
            applier.call(path, "cards", False, card_update, card=card, **values)

    periods_by_name = {p.name: p for p in TouPeriod.objects.all()}
    for path, data in plan.tou_periods:
        values = {k: v for k, v in data.items() if k not in ("slots", "zones")}
        applier.call(
            path,
            "tou_periods",
            None,
            tou_period_save,
            periods_by_name.get(data["name"]),
            slots=data["slots"],
            zones=[zones_by_name[z] for z in data["zones"]],
            **values,
        )

    inputs_by_number = {i.number: i for i in ExternalInput.objects.all()}
    for path, data in plan.external_inputs:
        values = {**data, "device": meters_by_name.get(data["device"]) if data["device"] else None}
        applier.call(
            path,
            "external_inputs",
            None,
            external_input_save,
            inputs_by_number.get(data["number"]),
            **values,
        )

    if production_mode == ProductionMode.LOCAL and not applier.errors:
        applier.errors.extend(_local_production_errors(plan))
        if not applier.errors:
            try:  # the settings row, already counted above
                site_settings_update(production_mode=production_mode, user=user)
            except ValidationError as exc:
                applier.add_errors("site", exc)
    if applier.errors:
        raise SiteFileError(applier.errors)
    return result


def _release_moving_meters(plan: Plan, applier: _Applier) -> None:
    """Detach the meters the file moves to another zone (or role) from where they are now.

    The one-meter-one-zone rule is then checked against the file's final
    state; a zone left without either meter can no longer read net of production.
    """
    planned: dict[str, tuple[str, str]] = {}
    for zplan in plan.zones:
        for role in ("meter", "production_meter"):
            name = getattr(zplan, role)
            if name:
                planned[name] = (zplan.name, role)
    holders = Zone.objects.filter(
        Q(meter__name__in=planned) | Q(production_meter__name__in=planned)
    ).select_related("meter", "production_meter")
    for zone in holders:
        release: dict[str, Any] = {}
        for role in ("meter", "production_meter"):
            meter = getattr(zone, role)
            if (
                meter is not None
                and meter.name in planned
                and planned[meter.name] != (zone.name, role)
            ):
                release[role] = None
        if release:
            release["meter_net_of_production"] = False
            try:
                zone_update(zone, user=applier.user, **release)
            except ValidationError as exc:
                applier.add_errors("zones", exc)


def _local_production_errors(plan: Plan) -> list[str]:
    """Zones that would charge from nothing under "local only", with their paths.

    A zone is named where the file declares it, else where the file puts a
    station in it, else the error is on the production mode itself.
    """
    zone_paths = {zplan.name: zplan.path for zplan in plan.zones}
    station_paths: dict[str, str] = {}
    for path, data in plan.stations:
        station_paths.setdefault(data["zone"], f"{path}.zone")
    errors = []
    for zone in zones_without_production_meter():
        where = zone_paths.get(zone.name) or station_paths.get(zone.name) or "site.production"
        errors.append(
            f"{where}: zone {zone.name!r} holds stations but has no production_meter "
            "on itself or a zone above it, which production 'local' needs"
        )
    return errors


def _apply_station(
    applier: _Applier, path: str, data: dict, zones: dict[str, Zone], groups: dict[str, AuthGroup]
) -> None:
    """Declare, install or update a station, with exactly the file's connectors."""
    station = Station.objects.filter(identity__iexact=data["identity"]).first()
    settings = {
        "name": data["name"],
        "zone": zones.get(data["zone"]),
        "auth_group": groups.get(data["group"]) if data["group"] else None,
        "vip": data["vip"],
        "security_profile": data["security_profile"],
        "web_page_url": data["web_page_url"],
    }
    specs = [ConnectorSpec(**values) for values in data["connectors"]]
    existing = (
        set() if station is None else set(station.connectors.values_list("connector_id", flat=True))
    )
    created = station is None
    try:
        if station is None:
            station = station_create(identity=data["identity"], user=applier.user)
        # A station not installed yet is installed by the file; one installed is updated.
        write = station_update if station.state == StationState.INSTALLED else station_install
        write(
            station,
            connectors=specs,
            replace_connectors=True,
            authorization_key=data["authorization_key"],
            user=applier.user,
            **settings,
        )
    except ValidationError as exc:
        applier.add_errors(path, exc)
        return
    if data["cpo_password"]:
        applier.call(
            path,
            "station_cpo_passwords",
            False,
            station_cpo_password_set,
            station=station,
            **data["cpo_password"],
        )
    applier.result.count("stations", created)
    for spec in specs:
        applier.result.count("connectors", spec.connector_id not in existing)


def site_import(
    text: str,
    *,
    source: str = "",
    user=None,
    dry_run: bool = False,
    base_dir: Path | None = None,
) -> ImportResult:
    """Check and apply a site file; on any problem raise ``SiteFileError`` and change nothing.

    ``base_dir``: where the files the site file names (CA certificates) are read.
    """
    plan = parse_site_file(text, base_dir=base_dir)
    with transaction.atomic():
        result = apply_plan(plan, user=user)
        if dry_run:
            transaction.set_rollback(True)
            return result
        device_log_write(
            category=EventCategory.CONFIGURATION,
            event="site_imported",
            message=f"Site file {source or '(upload)'} imported.",
            user=user,
            data={"created": result.created, "updated": result.updated},
        )
    # Groups, cards and stations may all have changed: the connected stations
    # get their authentication configuration and local lists checked.
    _announce_authentication_change()
    return result


def _announce_authentication_change() -> None:
    announce_groups_changed(
        group_ids=AuthGroup.objects.values_list("pk", flat=True),
        station_ids=Station.objects.filter(state=StationState.INSTALLED).values_list(
            "pk", flat=True
        ),
    )
