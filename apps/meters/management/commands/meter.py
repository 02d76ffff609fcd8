"""``python manage.py meter read NAME [--json]``: one read, values with units or a clear error."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.meters.modbus.client import MeterError
from apps.meters.models import Meter, MeterModel
from apps.meters.services import MeterModelImportError, meter_model_import, meter_read_once

UNITS = {
    "current_l1_a": "A",
    "current_l2_a": "A",
    "current_l3_a": "A",
    "power_l1_kw": "kW",
    "power_l2_kw": "kW",
    "power_l3_kw": "kW",
    "power_total_kw": "kW",
    "energy_delivered_kwh": "kWh",
}


class Command(BaseCommand):
    help = "Read a configured power meter once."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        read = sub.add_parser("read", help="Read a meter once and print its values.")
        read.add_argument("name", help="Meter name.")
        read.add_argument("--json", action="store_true", help="Print the values as JSON.")
        exp = sub.add_parser("export-model", help="Write a meter model (register map) as JSON.")
        exp.add_argument("name", help="Model name (built-in or custom).")
        exp.add_argument("file", nargs="?", default="-", help="Output path [standard output].")
        imp = sub.add_parser(
            "import-model", help="Create or update a custom meter model from JSON."
        )
        imp.add_argument("file", help="JSON file, or - for standard input.")

    def handle(self, *args, **options):
        if options["action"] == "export-model":
            return self._export_model(options["name"], options["file"])
        if options["action"] == "import-model":
            return self._import_model(options["file"])
        meter = Meter.objects.select_related("model").filter(name=options["name"]).first()
        if meter is None:
            known = ", ".join(Meter.objects.values_list("name", flat=True)) or "none"
            raise CommandError(f"No meter named {options['name']!r} (known meters: {known}).")
        try:
            reading = meter_read_once(meter)
        except MeterError as exc:
            raise CommandError(f"Meter {meter.name} ({meter.address_display}): {exc}") from None
        values = reading.values()
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {"meter": meter.name, "read_at": reading.read_at.isoformat(), "values": values}
                )
            )
            return
        self.stdout.write(f"{meter.name} ({meter.model.name}, {meter.address_display})")
        for field, value in values.items():
            shown = "n/a" if value is None else f"{value:.3f} {UNITS[field]}"
            self.stdout.write(f"  {field:<22} {shown}")

    def _export_model(self, name: str, file: str) -> None:
        model = MeterModel.objects.filter(name=name).first()
        if model is None:
            known = ", ".join(MeterModel.objects.values_list("name", flat=True))
            raise CommandError(f"No meter model named {name!r} (known models: {known}).")
        text = json.dumps(model.as_json(), indent=2) + "\n"
        if file == "-":
            self.stdout.write(text, ending="")
        else:
            Path(file).write_text(text)

    def _import_model(self, file: str) -> None:
        try:
            text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"Cannot read {file}: {exc}") from None
        try:
            model, created = meter_model_import(text)
        except MeterModelImportError as exc:
            for error in exc.errors:
                self.stderr.write(f"{file}: {error}")
            raise CommandError(
                f"{len(exc.errors)} problem(s) found; nothing was changed."
            ) from None
        self.stdout.write(f"Meter model {model.name} {'created' if created else 'updated'}.")
