"""``python manage.py cards import FILE [--group NAME]`` / ``cards export [FILE]``."""

from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from apps.rfid.cards_csv import CardCsvError, cards_csv_export, cards_csv_import
from apps.rfid.models import AuthGroup


class Command(BaseCommand):
    help = "Import or export RFID cards as CSV (id_tag;is_blocked;vip_level;comments;)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        imp = sub.add_parser(
            "import", help="Check a card file and apply it (all or nothing, never deletes)."
        )
        imp.add_argument("file", help="Path of the CSV file, or - for standard input.")
        imp.add_argument("--group", help="Also add every card of the file to this group.")
        imp.add_argument("--check", action="store_true", help="Only check the file.")
        exp = sub.add_parser("export", help="Write every card as CSV.")
        exp.add_argument("file", nargs="?", default="-", help="Output path [standard output].")

    def handle(self, *args, **options):
        if options["action"] == "import":
            self._import(options["file"], options["group"], options["check"])
        else:
            self._export(options["file"])

    def _export(self, file: str) -> None:
        if file == "-":
            for line in cards_csv_export():
                self.stdout.write(line, ending="")
            return
        try:
            with open(file, "w", encoding="utf-8", newline="") as out:
                out.writelines(cards_csv_export())
        except OSError as exc:
            raise CommandError(
                _("Cannot write %(file)s: %(error)s") % {"file": file, "error": exc}
            ) from None
        self.stderr.write(_("Cards exported to %(file)s.") % {"file": file})

    def _import(self, file: str, group_name: str | None, check_only: bool) -> None:
        group = None
        if group_name:
            group = AuthGroup.objects.filter(name=group_name).first()
            if group is None:
                raise CommandError(
                    _("No authentication group is named %(name)r.") % {"name": group_name}
                )
        try:
            data = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
        except OSError as exc:
            raise CommandError(
                _("Cannot read %(file)s: %(error)s") % {"file": file, "error": exc}
            ) from None
        try:
            result = cards_csv_import(
                data=data, group=group, dry_run=check_only, source=file, user=None
            )
        except CardCsvError as exc:
            for error in exc.errors:
                self.stderr.write(f"{file}: {error}")
            raise CommandError(
                ngettext(
                    "%(count)d problem found; nothing was changed.",
                    "%(count)d problems found; nothing was changed.",
                    len(exc.errors),
                )
                % {"count": len(exc.errors)}
            ) from None
        summary = _("%(created)d created, %(updated)d updated, %(unchanged)d unchanged") % {
            "created": result.created,
            "updated": result.updated,
            "unchanged": result.unchanged,
        }
        if check_only:
            text = _("%(file)s is valid: %(summary)s.")
        else:
            text = _("Cards imported from %(file)s: %(summary)s.")
        self.stdout.write(text % {"file": file, "summary": summary})
