import io
from decimal import Decimal

import pytest
import yaml
from django.apps import apps
from django.contrib.auth.hashers import make_password
from django.core.management import CommandError, call_command

from apps.devicelog.models import DeviceLogEntry
from apps.maintenance.management.setup import DEMO_SITE_FILE
from apps.meters.models import ConnectionType, Meter, MeterModel
from apps.rfid.models import AuthGroup, Card, OfflineStrategy, OnlineMode
from apps.siteconfig.models import SiteSettings
from apps.sitefile.sitefile import SiteFileError, parse_site_file, site_export, site_import
from apps.stations.models import Connector, CurrentType, Station, StationState
from apps.zones.models import ExternalInput, InputKind, TouPeriod, Zone
from tests.stations.factories import DiscoveredStationFactory

pytestmark = pytest.mark.django_db

DEMO = DEMO_SITE_FILE.read_text()


def table_counts() -> dict[str, int]:
    """Rows in every table, many-to-many tables included."""
    return {
        model._meta.db_table: model.objects.count()
        for model in apps.get_models(include_auto_created=True)
    }


def snapshot() -> tuple[dict[str, int], str, dict]:
    """Everything an import could change: row counts, the configuration, the settings."""
    export = site_export()
    site = SiteSettings.objects.filter(pk=1).values().first()
    return table_counts(), export, site


def import_errors(text: str, **kwargs) -> list[str]:
    with pytest.raises(SiteFileError) as excinfo:
        site_import(text, **kwargs)
    return excinfo.value.errors


def wipe_configuration() -> None:
    """Bring the database back to a fresh install."""
    TouPeriod.objects.all().delete()
    ExternalInput.objects.all().delete()
    Card.objects.all().delete()
    Station.objects.all().delete()
    AuthGroup.objects.all().delete()
    while Zone.objects.exists():
        Zone.objects.filter(children__isnull=True).delete()
    Meter.objects.all().delete()
    MeterModel.objects.filter(builtin=False).delete()
    SiteSettings.objects.all().delete()


# --- the demo site ----------------------------------------------------------------------


def test_the_demo_site_imports():
    result = site_import(DEMO, source="demo")

    assert result.site_name == "Demo car park"
    assert result.created == {
        "meters": 3,
        "zones": 6,
        "auth_groups": 3,
        "stations": 8,
        "connectors": 12,
        "cards": 5,
        "tou_periods": 2,
        "external_inputs": 1,
    }
    site = SiteSettings.load()
    assert (site.production_mode, site.idle_suspension_enabled) == ("grid+local", True)

    main = Zone.objects.get(name="Main switchboard")
    assert main.parent is None
    assert (main.meter.name, main.production_meter.name) == ("main", "solar")
    assert main.degraded_current_a == Decimal("40")
    north = Zone.objects.get(name="Level -1 north")
    assert [z.name for z in north.ancestors()] == ["Level -1", "Main switchboard"]
    assert Zone.objects.get(name="Level -1").phase_imbalance_limit_a == Decimal("20")
    assert Meter.objects.get(name="hvac").is_reporting

    assert set(Station.objects.values_list("state", flat=True)) == {StationState.INSTALLED}
    dc = Connector.objects.get(station__identity="DEMO-DC01")
    assert (dc.current_type, dc.max_power_w, dc.max_current_a) == (CurrentType.DC, 50000, None)
    cp03 = Station.objects.get(identity="DEMO-CP03")
    assert cp03.vip
    assert list(cp03.connectors.values_list("phase_wiring", flat=True)) == ["MONO1", "MONO2"]

    fleet = AuthGroup.objects.get(name="Fleet")
    assert (fleet.online_mode, fleet.offline_strategy) == (
        OnlineMode.READER_DISABLED,
        OfflineStrategy.AUTHORIZE_ALL,
    )
    card = Card.objects.get(id_tag="04A1B2C3")
    assert sorted(card.groups.values_list("name", flat=True)) == ["Fleet", "Staff"]
    assert not Card.objects.get(id_tag="04A1B2C6").authorized

    peak = TouPeriod.objects.get(name="Peak")
    assert list(peak.zones.values_list("name", flat=True)) == ["Main switchboard"]
    assert [str(s) for s in peak.slots.all()] == ["07:00-10:00", "17:00-20:00"]
    night = TouPeriod.objects.get(name="Night")
    assert not night.zones.exists()
    assert night.slots.get().crosses_midnight
    assert ExternalInput.objects.get().kind == InputKind.API

    entry = DeviceLogEntry.objects.get(event="site_imported")
    assert entry.category == "configuration"
    assert "demo" in entry.message


def test_importing_the_same_file_again_changes_nothing():
    site_import(DEMO)
    before = snapshot()

    result = site_import(DEMO)

    assert result.created == {}
    assert result.updated["zones"] == 6
    counts, export, site = snapshot()
    before[0]["maintenance_devicelogentry"] += 1  # the import itself is logged
    assert (counts, export, site) == before


def test_objects_the_file_does_not_name_are_left_alone():
    site_import(DEMO)
    extra = Zone.objects.create(name="Workshop", max_current_a=Decimal("32"))
    discovered = DiscoveredStationFactory(identity="NEW-CP")

    site_import(DEMO)

    assert Zone.objects.filter(pk=extra.pk).exists()
    assert Station.objects.get(pk=discovered.pk).state == StationState.DISCOVERED


# --- round trip -------------------------------------------------------------------------


def rich_site() -> dict:
    """The demo site plus every optional feature the file format carries."""
    doc = yaml.safe_load(DEMO)
    doc["site"].update(
        floor="evze",
        priority="duration",
        supervision="multiple",
        meter_poll_interval_ms=250,
        meter_lost_after_polls=5,
        heartbeat_interval_s=120,
        max_zone_levels=5,
    )
    doc["site"]["optimisation"].update(reduction_trigger_a=4.5, reduction_gap_a=1.5)
    doc["meter_models"] = [
        {
            "name": "acme-em3",
            "description": "ACME EM3, word-swapped input registers",
            "registers": {
                "current_l1_a": {
                    "address": 0,
                    "format": "float32",
                    "register_type": "input",
                    "scale": 1.0,
                    "word_order": "little",
                },
                "current_l2_a": {"address": 2, "format": "int32", "scale": 0.001},
                "energy_delivered_kwh": {"address": 100, "format": "uint64", "scale": 0.01},
            },
        }
    ]
    doc["meters"] += [
        {
            "name": "garage",
            "model": "acme-em3",
            "serial": "/dev/ttyUSB1",
            "baudrate": 9600,
            "parity": "E",
            "stopbits": 2,
            "bytesize": 8,
            "unit_id": 12,
            "timeout_ms": 500,
        },
        {"name": "io-box", "model": "pm5320", "host": "192.0.2.20", "unit_id": 9, "enabled": False},
    ]
    doc["zones"][0]["meter_net_of_production"] = True
    doc["zones"][0]["zones"].append(
        {
            "name": "Garage",
            "max_current_a": 50.5,
            "meter": "garage",
            "degraded_current_a": 12.5,
            "phase_imbalance_limit_a": 16,
        }
    )
    doc["auth_groups"].append({"name": "Contractors", "online": "known_cards"})
    doc["stations"].append(
        {
            "identity": "GARAGE.CP|01",
            "name": "Garage bay",
            "zone": "Garage",
            "group": "Contractors",
            "vip": True,
            "security_profile": 1,
            "authorization_key": "garage-station-key-01",
            "web_page_url": "http://192.0.2.51/",
            "connectors": [
                {"id": 1, "phases": "MONO2", "max_current_a": 16.5},
                {"id": 2, "type": "DC", "phases": "TRI231", "max_power_w": 24000},
            ],
        }
    )
    doc["cards"] += [
        {
            "id_tag": "04A1B2C8",
            "authorized": False,
            "vip": True,
            "comment": "Sub-contractor",
            "parent_id_tag": "FLEET-AUTO",
            "groups": ["Contractors", "Staff"],
        },
        {"id_tag": "04A1B2C9", "groups": []},
        {"id_tag": "04A1B2CA", "expires_at": "2031-06-30T18:00:00Z", "groups": []},
    ]
    doc["tou_periods"].append(
        {
            "name": "Weekend",
            "enabled": False,
            "days": ["sun", "sat"],
            "slots": ["23:00-01:00", "12:00-24:00"],
            "max_percent": 0,
            "zones": ["Garage", "Level -2"],
        }
    )
    doc["external_inputs"] += [
        {
            "number": 2,
            "name": "Load shedding relay",
            "percent": 0,
            "source": "discrete_input",
            "device": "io-box",
            "address": 4,
            "active_when_off": True,
        },
        {
            "number": 3,
            "name": "Fire alarm",
            "enabled": False,
            "percent": 10,
            "source": "coil",
            "device": "io-box",
            "address": 0,
        },
    ]
    return doc


def test_import_export_import_export_is_identical():
    site_import(yaml.safe_dump(rich_site(), sort_keys=False))
    first = site_export()

    wipe_configuration()
    site_import(first)
    second = site_export()

    assert second == first
    assert site_import(second).created == {}
    assert site_export() == first


def test_the_export_carries_every_feature_of_the_file():
    rich = rich_site()
    site_import(yaml.safe_dump(rich, sort_keys=False))
    doc = yaml.safe_load(site_export())

    def named(items: list[dict], key: str, value) -> dict:
        return next(item for item in items if item[key] == value)

    assert doc["site"]["floor"] == "evze"
    assert doc["site"]["meter_poll_interval_ms"] == 250
    assert doc["site"]["optimisation"]["reduction_trigger_a"] == 4.5
    assert doc["meter_models"] == rich["meter_models"]
    assert named(doc["meters"], "name", "garage") == named(rich["meters"], "name", "garage")
    assert named(doc["meters"], "name", "io-box")["enabled"] is False
    assert named(doc["meters"], "name", "hvac")["reporting"] is True
    (main,) = doc["zones"]
    assert main["meter_net_of_production"] is True
    garage = named(main["zones"], "name", "Garage")
    assert garage == named(rich["zones"][0]["zones"], "name", "Garage")
    station = named(doc["stations"], "identity", "GARAGE.CP|01")
    assert station["security_profile"] == 1
    assert station["web_page_url"] == "http://192.0.2.51/"
    assert (
        station["connectors"] == named(rich["stations"], "identity", "GARAGE.CP|01")["connectors"]
    )
    assert named(doc["cards"], "id_tag", "04A1B2C8") == named(rich["cards"], "id_tag", "04A1B2C8")
    assert named(doc["cards"], "id_tag", "04A1B2CA")["expires_at"] == "2031-06-30T18:00:00Z"
    # Days and slots come back sorted; a slot up to midnight ends at 00:00.
    assert named(doc["tou_periods"], "name", "Weekend") == {
        "name": "Weekend",
        "enabled": False,
        "days": ["sat", "sun"],
        "slots": ["12:00-00:00", "23:00-01:00"],
        "max_percent": 0,
        "zones": ["Garage", "Level -2"],
    }
    assert doc["external_inputs"][1:] == rich["external_inputs"][1:]


def test_the_export_contains_no_secret():
    doc = rich_site()
    site_import(yaml.safe_dump(doc, sort_keys=False))
    station = Station.objects.get(identity="GARAGE.CP|01")
    assert station.check_authorization_key("garage-station-key-01")
    site = SiteSettings.load()
    site.shared_authorization_key_hash = make_password("shared-site-key-99")
    site.save()

    text = site_export()

    for secret in (
        "garage-station-key-01",
        station.authorization_key_hash,
        "shared-site-key-99",
        site.shared_authorization_key_hash,
    ):
        assert secret not in text
    assert "authorization_key" not in text
    assert "pbkdf2" not in text


def test_reimporting_an_export_keeps_the_station_key():
    site_import(yaml.safe_dump(rich_site(), sort_keys=False))
    site_import(site_export())
    station = Station.objects.get(identity="GARAGE.CP|01")
    assert station.check_authorization_key("garage-station-key-01")


# --- invalid files: every error, nothing changed ----------------------------------------

LONG_COMMENT = "c" * 51
SPARE_ZONES = "".join(f"  - {{name: Spare {n}, max_current_a: 16}}\n" for n in range(1, 15))
FOUR_SLOTS = '["00:00-01:00", "02:00-03:00", "04:00-05:00", "06:00-07:00"]'
BROKEN = f"""\
site:
  name: Broken site
  colour: blue
meters:
  - {{name: main, model: pm5320, host: 10.0.0.1}}
  - {{name: hvac, model: pm5320, host: 10.0.0.2, reporting: true}}
  - {{name: spare, model: acme-9000, host: 10.0.0.3}}
zones:
  - name: Main
    max_current_a: 63
    meter: main
    zones:
      - {{name: Level -1, max_current_a: 40, meter: hvac}}
      - {{name: Level -2, max_current_a: 80, meter: main}}
      - name: Level -3
        max_current_a: 50
        production_meter: ghost
        zones:
          - name: Level -3a
            max_current_a: 40
            zones:
              - name: Level -3a1
                max_current_a: 30
                zones:
                  - {{name: Too deep, max_current_a: 20}}
{SPARE_ZONES}\
auth_groups:
  - {{name: Staff}}
stations:
  - identity: CP01
    name: Bay 1
    zone: Main
    group: Night shift
    connectors:
      - {{id: 1, phases: TRI123, max_current_a: 32}}
      - {{id: 1, phases: MONO1, max_current_a: 16}}
  - identity: CP 02
    name: Bay 2
    zone: Level -1
    connectors:
      - {{id: 1, phases: TRI123}}
cards:
  - {{id_tag: 04A1B2C3, comment: {LONG_COMMENT}, groups: [Staff, Contractors]}}
tou_periods:
  - {{name: P1, days: [mon, funday], slots: ["25:00-10:00", "07:00-09:00"], max_percent: 50}}
  - {{name: P2, days: [tue], slots: {FOUR_SLOTS}, max_percent: 50}}
  - {{name: P3, days: [wed], slots: {FOUR_SLOTS}, max_percent: 50}}
  - {{name: P4, days: [thu], slots: {FOUR_SLOTS}, max_percent: 50}}
  - {{name: P5, days: [fri], slots: {FOUR_SLOTS}, max_percent: 50}}
  - {{name: P6, days: [sat], slots: {FOUR_SLOTS}, max_percent: 50}}
extras: true
"""
EXPECTED_ERRORS = [
    "extras: unknown key (expected one of site, supervisions, meter_models, meters, zones, "
    "auth_groups, stations, cards, tou_periods, external_inputs)",
    "site.colour: unknown key (expected one of name, floor, priority, production, supervision, "
    "nominal_voltage_v, meter_poll_interval_ms, meter_lost_after_polls, heartbeat_interval_s, "
    "meter_value_sample_interval_s, max_zones, max_zone_levels, optimisation, idle_suspension)",
    "meters[2].model: unknown meter model 'acme-9000'",
    "zones[0].zones[0].meter: meter 'hvac' is a reporting meter",
    "zones[0].zones[1].max_current_a: exceeds parent's 63 A",
    "zones[0].zones[1].meter: meter 'main' already serves zones[0]",
    "zones[0].zones[2].production_meter: unknown meter 'ghost'",
    "zones[0].zones[2].zones[0].zones[0].zones[0]: is at level 5; zones are limited to 4 levels",
    "zones: the site would have 21 zones; the limit is 20",
    "stations[0].zone: zone 'Main' has sub-zones; stations go on terminal zones only",
    "stations[0].group: unknown authentication group 'Night shift'",
    "stations[0].connectors[1].id: connector 1 is defined twice",
    "stations[1].identity: must be 1–30 characters among letters, digits and "
    "* - _ = + | @ . (no spaces)",
    "stations[1].connectors[0].max_current_a: is required for an AC connector",
    "cards[0].comment: is longer than 50 characters",
    "cards[0].groups[1]: unknown authentication group 'Contractors'",
    "tou_periods: at most 5 time-of-use periods",
    "tou_periods[0].days[1]: 'funday' is not one of mon, tue, wed, thu, fri, sat, sun",
    "tou_periods[0].slots[0]: '25:00-10:00' is not a slot like \"07:00-10:00\"",
    "tou_periods: 21 time slots in total; the limit is 20",
]


def test_a_broken_file_reports_every_error_with_its_path():
    with pytest.raises(SiteFileError) as excinfo:
        parse_site_file(BROKEN)
    assert sorted(excinfo.value.errors) == sorted(EXPECTED_ERRORS)


def test_a_broken_file_changes_nothing():
    site_import(DEMO)
    before = snapshot()

    # The demo's zones and slots stay, so they count against the limits too.
    expected = [
        e.replace("21 time slots", "24 time slots").replace("21 zones", "25 zones")
        for e in EXPECTED_ERRORS
    ]
    assert sorted(import_errors(BROKEN)) == sorted(expected)

    assert snapshot() == before


@pytest.mark.parametrize(
    ("text", "errors"),
    [
        ("", ["file: is empty"]),
        ("# only a comment\n", ["file: is empty"]),
        ("- site\n- zones\n", ["file: must be a mapping (key: value)"]),
        (
            "site:\n\tname: x\n",
            [
                "line 2, column 1: not valid YAML (found character '\\t' that cannot start "
                "any token)"
            ],
        ),
        (
            "site:\n  name: Car park\nzones:\n  - {name: A, max_current_a: 10\n",
            ["line 5, column 1: not valid YAML (expected ',' or '}', but got '<stream end>')"],
        ),
        ("zones: {name: A}\n", ["zones: must be a list"]),
        ("zones: [Main]\n", ["zones[0]: must be a mapping (key: value)"]),
        (
            "zones: [{name: A}]\n",
            ["zones[0].max_current_a: is required"],
        ),
        (
            "zones: [{name: A, max_current_a: 10.25}]\n",
            ["zones[0].max_current_a: has more than one decimal"],
        ),
        (
            "zones: [{name: A, max_current_a: 0}]\n",
            ["zones[0].max_current_a: must be between 0.1 and 10000"],
        ),
        ("zones: [{name: A, max_current_a: ten}]\n", ["zones[0].max_current_a: must be a number"]),
        ("zones: [{name: A, max_current_a: .inf}]\n", ["zones[0].max_current_a: must be a number"]),
        ("zones: [{name: A, max_current_a: .nan}]\n", ["zones[0].max_current_a: must be a number"]),
        (
            "zones: [{name: A, max_current_a: 1.0e+30}]\n",
            ["zones[0].max_current_a: must be between 0.1 and 10000"],
        ),
        (
            "zones: [{name: A, max_current_a: 32, degraded_current_a: 40}]\n",
            ["zones[0].degraded_current_a: exceeds the zone's 32 A"],
        ),
        (
            "zones: [{name: A, max_current_a: 32}, {name: A, max_current_a: 16}]\n",
            ["zones[1].name: zone 'A' is already defined at zones[0]"],
        ),
        (
            "meters: [{name: m, model: pm5320}]\n",
            ["meters[0]: give either host (Modbus TCP) or serial (Modbus RTU)"],
        ),
        (
            "meters: [{name: m, model: pm5320, host: h, serial: /dev/ttyS0, unit_id: 0}]\n",
            [
                "meters[0]: give either host (Modbus TCP) or serial (Modbus RTU)",
                "meters[0].unit_id: must be between 1 and 255",
            ],
        ),
        (
            "meters: [{name: m, model: pm5320, host: h}]\n"
            "zones: [{name: A, max_current_a: 32, meter: m, production_meter: m}]\n",
            ["zones[0].production_meter: meter 'm' already serves zones[0]"],
        ),
        (
            "zones: [{name: A, max_current_a: 32, meter_net_of_production: maybe}]\n",
            ["zones[0].meter_net_of_production: must be true or false"],
        ),
        (
            "meters: [{name: m, model: pm5320, host: h}]\n"
            "zones: [{name: A, max_current_a: 32, meter: m, meter_net_of_production: true}]\n",
            [
                "zones[0].meter_net_of_production: needs the zone's meter and its "
                "production_meter (the production the meter nets out)"
            ],
        ),
        (
            "meter_models: [{name: pm5320, registers: {current_l1_a: {address: 0, "
            "format: float32}}}]\n",
            ["meter_models[0].name: 'pm5320' is a built-in model and cannot be redefined"],
        ),
        (
            "meter_models: [{name: x, registers: {current_l1_a: {address: 0, format: real}}}]\n",
            [
                "meter_models[0].registers.current_l1_a.format: unknown format 'real' "
                "(expected one of float32, int64, int32, int16, uint64, uint32, uint16)"
            ],
        ),
        (
            "site: {max_zone_levels: 2}\n"
            "zones: [{name: A, max_current_a: 32, zones: [{name: B, max_current_a: 16, "
            "zones: [{name: C, max_current_a: 8}]}]}]\n",
            ["zones[0].zones[0].zones[0]: is at level 3; zones are limited to 2 levels"],
        ),
        (
            "site: {max_zones: 1}\n"
            "zones: [{name: A, max_current_a: 32}, {name: B, max_current_a: 16}]\n",
            ["zones: the site would have 2 zones; the limit is 1"],
        ),
        (
            "zones: [{name: A, max_current_a: 32}]\n"
            "stations: [{identity: CP01, name: Bay, zone: A, connectors: []}]\n",
            ["stations[0].connectors: a station needs at least one connector"],
        ),
        (
            "zones: [{name: A, max_current_a: 32}]\n"
            "stations: [{identity: CP01, name: Bay, zone: Z, connectors: [{id: 1, type: DC}]}]\n",
            [
                "stations[0].zone: unknown zone 'Z'",
                "stations[0].connectors[0].max_power_w: is required for a DC connector",
            ],
        ),
        (
            "zones: [{name: A, max_current_a: 32}]\n"
            "stations:\n"
            "  - {identity: CP01, name: Bay, zone: A, connectors: [{id: 1, max_current_a: 16}]}\n"
            "  - {identity: cp01, name: Bay, zone: A, connectors: [{id: 1, max_current_a: 16}]}\n",
            ["stations[1].identity: station 'cp01' is defined twice"],
        ),
        (
            "zones: [{name: A, max_current_a: 32}]\n"
            f"stations: [{{identity: {'x' * 31}, name: Bay, zone: A, "
            "connectors: [{id: 1, max_current_a: 16}]}]\n",
            ["stations[0].identity: is longer than 30 characters"],
        ),
        (
            "cards: [{id_tag: 04A1B2C3}, {id_tag: 04a1b2c3}, {id_tag: 04A1 B2C3}]\n",
            [
                "cards[1].id_tag: card '04a1b2c3' is defined twice",
                "cards[2].id_tag: must be 1–20 printable characters without spaces",
            ],
        ),
        (
            "tou_periods: [{name: P, days: [mon, mon], slots: ['08:00-08:00'], "
            "max_percent: 101}]\n",
            [
                "tou_periods[0].max_percent: must be between 0 and 100",
                "tou_periods[0].days[1]: 'mon' is listed twice",
                "tou_periods[0].slots[0]: '08:00-08:00' is not a slot like \"07:00-10:00\"",
            ],
        ),
        (
            "tou_periods: [{name: [P], days: [mon], slots: ['07:00-10:00'], max_percent: 50, "
            "zones: [[A], Nowhere]}]\n",
            [
                "tou_periods[0].name: must be text",
                "tou_periods[0].zones[0]: unknown zone ['A']",
                "tou_periods[0].zones[1]: unknown zone 'Nowhere'",
            ],
        ),
        (
            "external_inputs:\n"
            "  - {number: 4, name: Relay, percent: 100}\n"
            "  - {number: 1, name: Relay, percent: 50, source: coil, device: ghost}\n"
            "  - {number: 1, name: Relay, percent: 50, source: api}\n",
            [
                "external_inputs[0].number: must be between 1 and 3",
                "external_inputs[0].percent: must be between 0 and 99",
                "external_inputs[0].device: is required for a Modbus input",
                "external_inputs[0].address: is required for a Modbus input",
                "external_inputs[1].device: unknown meter 'ghost'",
                "external_inputs[1].address: is required for a Modbus input",
                "external_inputs[2].number: input 1 is defined twice",
            ],
        ),
    ],
)
def test_each_problem_is_reported_with_its_path(text, errors):
    before = table_counts()
    assert sorted(import_errors(text)) == sorted(errors)
    assert table_counts() == before


def test_limits_count_the_zones_and_periods_already_in_the_database():
    site_import(DEMO)
    extra_zones = "".join(f"  - {{name: Extra {n}, max_current_a: 16}}\n" for n in range(15))
    assert import_errors(f"zones:\n{extra_zones}") == [
        "zones: the site would have 21 zones; the limit is 20"
    ]
    periods = "".join(
        f"  - {{name: P{n}, days: [mon], slots: ['0{n}:00-0{n}:30'], max_percent: 50}}\n"
        for n in range(4)
    )
    assert import_errors(f"tou_periods:\n{periods}") == [
        "tou_periods: at most 5 time-of-use periods"
    ]


def test_errors_found_by_the_models_while_applying_roll_everything_back():
    site_import(DEMO)
    before = snapshot()
    text = """\
site: {name: Renamed site}
meters:
  - {name: new-meter, model: pm5320, host: 10.0.0.9}
zones:
  - name: Main switchboard
    max_current_a: 160
    zones:
      - {name: Level -1, max_current_a: 50}
      - name: Level -2
        max_current_a: 80
        zones:
          - {name: Level -2 east, max_current_a: 40}
"""
    assert import_errors(text) == [
        "zones[0].zones[0].max_current_a: is below the 63 A of one of its sub-zones",
        "zones[0].zones[1].zones[0].parent: Zone Level -2 has stations: only terminal zones "
        "hold stations, so it cannot get sub-zones.",
    ]
    assert snapshot() == before
    assert SiteSettings.load().name == "Demo car park"
    assert not Meter.objects.filter(name="new-meter").exists()
    assert Zone.objects.get(name="Main switchboard").meter.name == "main"


def test_a_dry_run_checks_and_changes_nothing():
    site_import(DEMO)
    before = snapshot()
    doc = rich_site()

    result = site_import(yaml.safe_dump(doc), dry_run=True)

    assert result.created["stations"] == 1
    assert snapshot() == before


def test_a_dry_run_reports_errors_found_while_applying():
    site_import(DEMO)
    text = "zones: [{name: Level -2, max_current_a: 80, zones: [{name: East, max_current_a: 8}]}]"
    errors = import_errors(text, dry_run=True)
    assert errors == [
        "zones[0].zones[0].parent: Zone Level -2 has stations: only terminal zones hold "
        "stations, so it cannot get sub-zones."
    ]


def test_meters_can_move_between_zones_in_one_file():
    site_import(DEMO)
    swapped = DEMO.replace("meter: main", "meter: TMP").replace(
        "production_meter: solar", "production_meter: main"
    )
    swapped = swapped.replace("meter: TMP", "meter: solar")
    site_import(swapped)
    main = Zone.objects.get(name="Main switchboard")
    assert (main.meter.name, main.production_meter.name) == ("solar", "main")


def test_a_zone_meter_measures_consumption_unless_the_file_says_net():
    site_import(DEMO)
    main = Zone.objects.get(name="Main switchboard")
    assert main.meter_net_of_production is False
    assert "meter_net_of_production" not in site_export()

    site_import(
        DEMO.replace(
            "production_meter: solar", "production_meter: solar\n    meter_net_of_production: true"
        )
    )
    assert Zone.objects.get(name="Main switchboard").meter_net_of_production is True

    site_import(DEMO)  # the file is the whole truth about the zones it names
    assert Zone.objects.get(name="Main switchboard").meter_net_of_production is False


def test_a_zone_left_without_its_production_meter_stops_reading_net():
    """A file that takes a net zone's production meter for another zone leaves it valid."""
    site_import(
        "meters:\n"
        "  - {name: grid, model: pm5320, host: 10.0.0.1}\n"
        "  - {name: pv, model: pm5320, host: 10.0.0.2}\n"
        "zones:\n"
        "  - {name: A, max_current_a: 63, meter: grid, production_meter: pv,"
        " meter_net_of_production: true}\n"
    )
    site_import("zones: [{name: B, max_current_a: 63, production_meter: pv}]\n")
    zone = Zone.objects.get(name="A")
    assert (zone.production_meter, zone.meter_net_of_production) == (None, False)
    zone.full_clean()


# --- the management command -------------------------------------------------------------


def run_site(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("site", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_command_imports_a_file(tmp_path):
    path = tmp_path / "site.yaml"
    path.write_text(DEMO)

    out, _ = run_site("import", str(path))

    assert out.startswith("Site 'Demo car park' imported: created 3 auth_groups, 5 cards")
    assert "updated 1 site" in out
    assert Station.objects.count() == 8


def test_command_prints_every_error_and_fails(tmp_path):
    before = snapshot()
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN)
    err = io.StringIO()

    with pytest.raises(CommandError, match=r"^20 problem\(s\) found; nothing was changed\.$"):
        call_command("site", "import", str(path), stdout=io.StringIO(), stderr=err)

    lines = err.getvalue().splitlines()
    assert sorted(lines) == sorted(f"{path}: {error}" for error in EXPECTED_ERRORS)
    assert snapshot() == before


def test_command_check_only_validates(tmp_path):
    path = tmp_path / "site.yaml"
    path.write_text(DEMO)

    out, _ = run_site("import", str(path), "--check")

    assert out.startswith("Site 'Demo car park' is valid: created 3 auth_groups")
    assert not Zone.objects.exists()
    assert not Station.objects.exists()
    assert not DeviceLogEntry.objects.exists()


def test_command_check_reports_errors(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN)
    with pytest.raises(CommandError, match="problem"):
        call_command("site", "import", str(path), "--check", stderr=io.StringIO())


def test_command_reads_standard_input(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(DEMO))
    out, _ = run_site("import", "-")
    assert "imported" in out
    assert Zone.objects.count() == 6


def test_command_refuses_a_missing_file(tmp_path):
    with pytest.raises(CommandError, match="Cannot read"):
        run_site("import", str(tmp_path / "missing.yaml"))


def test_a_fresh_install_exports_its_default_settings():
    SiteSettings.objects.all().delete()
    doc = yaml.safe_load(site_export())
    assert doc == {
        "site": {
            "name": "evce",
            "floor": "iec61851",
            "priority": "energy",
            "production": "grid",
            "supervision": "local",
            "nominal_voltage_v": 230,
            "meter_poll_interval_ms": 500,
            "meter_lost_after_polls": 3,
            "heartbeat_interval_s": 60,
            "meter_value_sample_interval_s": 10,
            "max_zones": 20,
            "max_zone_levels": 4,
            "optimisation": {
                "enabled": True,
                "reduction_trigger_a": 4,
                "reduction_gap_a": 2,
                "increase_gap_a": 1,
            },
            "idle_suspension": {"enabled": False, "after_s": 300, "wake_up_interval_s": 600},
        }
    }


def test_command_exports_to_standard_output_and_to_a_file(tmp_path):
    site_import(DEMO)
    out, _ = run_site("export")
    assert out == site_export()

    path = tmp_path / "export.yaml"
    _, err = run_site("export", str(path))
    assert path.read_text() == out
    assert str(path) in err


def test_an_exported_file_reimports_through_the_command(tmp_path):
    site_import(yaml.safe_dump(rich_site(), sort_keys=False))
    path = tmp_path / "export.yaml"
    run_site("export", str(path))
    exported = path.read_text()
    wipe_configuration()

    run_site("import", str(path))

    assert site_export() == exported
    assert Meter.objects.get(name="garage").connection_type == ConnectionType.RTU


# --- local production only ----------------------------------------------------------------

LOCAL_SITE = """\
site: {name: Green, production: local}
meters:
  - {name: pv, model: pm5320, host: 10.0.0.8}
zones:
  - name: Roof
    max_current_a: 100
    production_meter: pv
    zones:
      - {name: Covered, max_current_a: 63}
  - name: Basement
    max_current_a: 63
stations:
  - {identity: GREEN-1, name: Covered 1, zone: Covered, connectors: [{id: 1, max_current_a: 32}]}
  - {identity: GREEN-2, name: Basement 1, zone: Basement, connectors: [{id: 1, max_current_a: 32}]}
"""


def test_local_only_is_refused_for_a_zone_with_stations_and_no_production_meter_above():
    """Green charging with nothing produced would charge from the grid: refused, nothing changed."""
    before = snapshot()
    assert import_errors(LOCAL_SITE) == [
        "zones[1]: zone 'Basement' holds stations but has no production_meter on itself "
        "or a zone above it, which production 'local' needs"
    ]
    assert snapshot() == before
    assert SiteSettings.load().production_mode == "grid"


def test_local_only_is_accepted_when_every_zone_with_stations_has_production_above():
    text = LOCAL_SITE.replace("zone: Basement,", "zone: Covered,")
    site_import(text)
    assert SiteSettings.load().production_mode == "local"
    # Basement has no stations: it does not matter that it has no production meter.
    assert not Zone.objects.get(name="Basement").stations.exists()


def test_local_only_already_set_refuses_a_station_in_a_zone_without_production():
    site_import(LOCAL_SITE.replace("zone: Basement,", "zone: Covered,"))
    before = snapshot()
    text = """\
stations:
  - {identity: GREEN-3, name: Basement 2, zone: Basement, connectors: [{id: 1, max_current_a: 32}]}
"""
    assert import_errors(text) == [
        "stations[0].zone: zone 'Basement' holds stations but has no production_meter on "
        "itself or a zone above it, which production 'local' needs"
    ]
    assert snapshot() == before


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2031-06-30T18:00:00+02:00", "2031-06-30T16:00:00+00:00"),
        ("2031-06-30", "2031-06-30T00:00:00+00:00"),
    ],
)
def test_a_card_expiry_date_is_imported(value, expected):
    site_import(yaml.safe_dump({"cards": [{"id_tag": "EXPIRING", "expires_at": value}]}))
    assert Card.objects.get(id_tag="EXPIRING").expires_at.isoformat() == expected
    # A file without the date removes it (the file describes the card as it is).
    site_import(yaml.safe_dump({"cards": [{"id_tag": "EXPIRING"}]}))
    assert Card.objects.get(id_tag="EXPIRING").expires_at is None


@pytest.mark.parametrize("value", ["soon", "2031-06-30T18:00:00", 12])
def test_a_bad_card_expiry_date_is_refused_with_its_path(value):
    errors = import_errors(yaml.safe_dump({"cards": [{"id_tag": "EXPIRING", "expires_at": value}]}))
    assert len(errors) == 1 and errors[0].startswith("cards[0].expires_at:"), errors
    assert not Card.objects.filter(id_tag="EXPIRING").exists()
