"""``python manage.py site import FILE`` / ``site export [FILE]``."""

from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.sitefile.sitefile import SiteFileError, site_export, site_import


class Command(BaseCommand):
    help = "Import or export the declarative site file (YAML)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        imp = sub.add_parser("import", help="Check a site file and apply it (all or nothing).")
        imp.add_argument("file", help="Path of the YAML file, or - for standard input.")
        imp.add_argument(
            "--check", action="store_true", help="Only check the file; change nothing."
        )
        exp = sub.add_parser("export", help="Write the current configuration as a site file.")
        exp.add_argument("file", nargs="?", default="-", help="Output path [standard output].")

    def handle(self, *args, **options):
        if options["action"] == "import":
            return self._import(options["file"], options["check"])
        text = site_export()
        if options["file"] == "-":
            self.stdout.write(text, ending="")
        else:
            Path(options["file"]).write_text(text)
            self.stderr.write(f"Site exported to {options['file']}.")

    def _import(self, file: str, check_only: bool) -> None:
        try:
            text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"Cannot read {file}: {exc}") from None
        try:
            result = site_import(
                text,
                source=file,
                dry_run=check_only,
                base_dir=None if file == "-" else Path(file).resolve().parent,
            )
        except SiteFileError as exc:
            for error in exc.errors:
                self.stderr.write(f"{file}: {error}")
            raise CommandError(
                f"{len(exc.errors)} problem(s) found; nothing was changed."
            ) from None
        verb = "is valid" if check_only else "imported"
        created = ", ".join(f"{n} {k}" for k, n in sorted(result.created.items())) or "nothing"
        updated = ", ".join(f"{n} {k}" for k, n in sorted(result.updated.items())) or "nothing"
        self.stdout.write(
            f"Site '{result.site_name}' {verb}: created {created}; updated {updated}."
        )
