"""Applying a checked site file through the services of each app, in one transaction."""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction

from apps.maintenance.models import EventCategory
from apps.maintenance.services import device_log_write
from apps.meters.models import Meter, MeterModel
from apps.rfid.models import AuthGroup, Card
from apps.siteconfig.models import ProductionMode, SiteSettings
from apps.siteconfig.sitefile.check import ImportResult, Plan, SiteFileError, parse_site_file
from apps.stations.models import Connector, Station, StationState
from apps.zones.models import ExternalInput, TouPeriod, TouSlot, Zone
from apps.zones.selectors import zones_without_production_meter

# ---------------------------------------------------------------------------
# Applying a plan
# ---------------------------------------------------------------------------


class _Applier:
    def __init__(self, result: ImportResult) -> None:
        self.result = result
        self.errors: list[str] = []

    def save(self, obj, path: str, kind: str, created: bool, exclude: Iterable[str] = ()) -> bool:
        """Validate ``obj`` with the model's own rules, then save it."""
        try:
            obj.full_clean(exclude=list(exclude))
        except ValidationError as exc:
            for field_name, messages in exc.message_dict.items():
                where = path if field_name == "__all__" else f"{path}.{field_name}"
                for message in messages:
                    self.errors.append(f"{where}: {message}")
            return False
        obj.save()
        self.result.count(kind, created)
        return True


def apply_plan(plan: Plan) -> ImportResult:
    """Write a checked plan; raise ``SiteFileError`` (and roll back) if the database refuses it."""
    site = SiteSettings.load()
    for key, value in plan.site.items():
        setattr(site, key, value)
    # "Local only" depends on the zones and stations the file brings: it is
    # set (and checked) once they are in place.
    production_mode = site.production_mode
    if production_mode == ProductionMode.LOCAL:
        site.production_mode = ProductionMode.GRID
    result = ImportResult(site_name=site.name)
    applier = _Applier(result)
    applier.save(site, "site", "site", created=False)

    for path, data in plan.meter_models:
        model, created = _get_or_new(MeterModel, name=data["name"])
        model.description = data.get("description", "")
        model.register_map = data["registers"]
        applier.save(model, path, "meter_models", created)

    models_by_name = {m.name: m for m in MeterModel.objects.all()}
    for path, data in plan.meters:
        meter, created = _get_or_new(Meter, name=data["name"])
        values = {k: v for k, v in data.items() if k not in ("name", "model")}
        meter.model = models_by_name.get(data["model"])
        for key, value in values.items():
            setattr(meter, key, value)
        applier.save(meter, path, "meters", created)

    meters_by_name = {m.name: m for m in Meter.objects.all()}
    # Meters move between zones in a file: release them first so the
    # one-meter-one-zone rule is checked against the file's final state.
    planned_meters = {z.meter for z in plan.zones} | {z.production_meter for z in plan.zones}
    # A zone left without either meter can no longer read net of production.
    Zone.objects.filter(meter__name__in=planned_meters).exclude(
        name__in=[z.name for z in plan.zones]
    ).update(meter=None, meter_net_of_production=False)
    Zone.objects.filter(production_meter__name__in=planned_meters).exclude(
        name__in=[z.name for z in plan.zones]
    ).update(production_meter=None, meter_net_of_production=False)
    Zone.objects.filter(name__in=[z.name for z in plan.zones]).update(
        meter=None, production_meter=None
    )
    zones_by_name: dict[str, Zone] = {}
    for zplan in plan.zones:  # parents come before their children
        zone, created = _get_or_new(Zone, name=zplan.name)
        zone.parent = zones_by_name.get(zplan.parent) if zplan.parent else None
        for key, value in zplan.values.items():
            setattr(zone, key, value)
        zone.meter = meters_by_name.get(zplan.meter) if zplan.meter else None
        zone.production_meter = (
            meters_by_name.get(zplan.production_meter) if zplan.production_meter else None
        )
        if applier.save(zone, zplan.path, "zones", created):
            zones_by_name[zone.name] = zone
    zones_by_name.update({z.name: z for z in Zone.objects.exclude(name__in=zones_by_name)})

    for path, data in plan.auth_groups:
        group, created = _get_or_new(AuthGroup, name=data["name"])
        for key, value in data.items():
            setattr(group, key, value)
        applier.save(group, path, "auth_groups", created)
    groups_by_name = {g.name: g for g in AuthGroup.objects.all()}

    for path, data in plan.stations:
        _apply_station(applier, path, data, zones_by_name, groups_by_name)

    for path, data in plan.cards:
        card = Card.objects.filter(id_tag__iexact=data["id_tag"]).first()
        created = card is None
        card = card or Card(id_tag=data["id_tag"])
        for key in ("authorized", "vip", "comment", "parent_id_tag"):
            setattr(card, key, data[key])
        if applier.save(card, path, "cards", created):
            card.groups.set([groups_by_name[g] for g in data["groups"]])

    for path, data in plan.tou_periods:
        period, created = _get_or_new(TouPeriod, name=data["name"])
        period.enabled, period.days, period.max_percent = (
            data["enabled"],
            data["days"],
            data["max_percent"],
        )
        if applier.save(period, path, "tou_periods", created):
            period.slots.all().delete()
            TouSlot.objects.bulk_create(
                TouSlot(period=period, start=s, end=e) for s, e in data["slots"]
            )
            period.zones.set([zones_by_name[z] for z in data["zones"]])

    for path, data in plan.external_inputs:
        entry, created = _get_or_new(ExternalInput, number=data["number"])
        for key, value in data.items():
            if key != "device":
                setattr(entry, key, value)
        entry.device = meters_by_name.get(data["device"]) if data["device"] else None
        applier.save(entry, path, "external_inputs", created)

    if production_mode == ProductionMode.LOCAL and not applier.errors:
        applier.errors.extend(_local_production_errors(plan))
        if not applier.errors:
            site.production_mode = production_mode
            site.save(update_fields=["production_mode"])
    if applier.errors:
        raise SiteFileError(applier.errors)
    return result


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
    station = Station.objects.filter(identity__iexact=data["identity"]).first()
    created = station is None
    station = station or Station(identity=data["identity"])
    station.name = data["name"]
    station.zone = zones.get(data["zone"])
    station.auth_group = groups.get(data["group"]) if data["group"] else None
    station.vip = data["vip"]
    station.security_profile = data["security_profile"]
    station.web_page_url = data["web_page_url"]
    if data["authorization_key"]:
        station.set_authorization_key(data["authorization_key"])
    if station.state != StationState.INSTALLED:
        from django.utils import timezone

        station.state = StationState.INSTALLED
        station.installed_at = timezone.now()
    if not applier.save(station, path, "stations", created):
        return
    wanted = {c["connector_id"] for c in data["connectors"]}
    station.connectors.exclude(connector_id__in=wanted).delete()
    for index, values in enumerate(data["connectors"]):
        connector = station.connectors.filter(connector_id=values["connector_id"]).first()
        is_new = connector is None
        connector = connector or Connector(station=station, connector_id=values["connector_id"])
        for key, value in values.items():
            setattr(connector, key, value)
        applier.save(connector, f"{path}.connectors[{index}]", "connectors", is_new)


def _get_or_new(model, **lookup):
    obj = model.objects.filter(**lookup).first()
    return (obj, False) if obj is not None else (model(**lookup), True)


def site_import(text: str, *, source: str = "", user=None, dry_run: bool = False) -> ImportResult:
    """Check and apply a site file; on any problem raise ``SiteFileError`` and change nothing."""
    plan = parse_site_file(text)
    with transaction.atomic():
        result = apply_plan(plan)
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
    from apps.rfid.services import announce_groups_changed

    announce_groups_changed(
        group_ids=AuthGroup.objects.values_list("pk", flat=True),
        station_ids=Station.objects.filter(state=StationState.INSTALLED).values_list(
            "pk", flat=True
        ),
    )
