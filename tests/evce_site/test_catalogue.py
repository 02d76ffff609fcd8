"""The French catalogue: complete, compiled, and in step with the strings of the code.

``make run`` works without GNU gettext because the compiled ``django.mo`` is
committed; these tests fail when it lags behind ``django.po`` or when a string
of the templates or the code has no French translation.
"""

from __future__ import annotations

import ast
import gettext
import re
import shutil
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils.translation.template import templatize

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = ROOT / "locale" / "fr" / "LC_MESSAGES"
TEMPLATE_DIRS = [ROOT / "templates", *sorted(ROOT.glob("apps/*/templates"))]
# Where makemessages looks for strings (the rest of the tree is tests and tooling).
SOURCES = ("apps", "evce_site", "templates")


def read_po(path: Path) -> dict[str | tuple[str, str], dict]:
    """``{msgid or (msgid, msgid_plural): {"msgstr": [...], "fuzzy": bool}}`` of a .po file.

    Enough of the format for what makemessages writes; obsolete entries are skipped.
    """
    entries: dict = {}
    for block in path.read_text(encoding="utf-8").split("\n\n"):
        lines = [line for line in block.splitlines() if line and not line.startswith("#~")]
        fields: dict[str, str] = {}
        current = None
        for line in lines:
            if line.startswith("#"):
                continue
            match = re.match(r"^(msgctxt|msgid_plural|msgid|msgstr(?:\[\d+\])?) (\".*\")$", line)
            if match:
                current = match.group(1)
                fields[current] = ast.literal_eval(match.group(2))
            else:
                fields[current] += ast.literal_eval(line)
        if not fields.get("msgid"):
            continue  # the header, or an obsolete entry
        assert "msgctxt" not in fields, "contexts are not used"
        key = fields["msgid"]
        if "msgid_plural" in fields:
            key = (fields["msgid"], fields["msgid_plural"])
            strings = [fields[k] for k in sorted(fields) if k.startswith("msgstr[")]
        else:
            strings = [fields["msgstr"]]
        fuzzy = any(line.startswith("#,") and "fuzzy" in line for line in lines)
        entries[key] = {"msgstr": strings, "fuzzy": fuzzy}
    return entries


def untranslated(entries: dict) -> list:
    return [key for key, entry in entries.items() if entry["fuzzy"] or not all(entry["msgstr"])]


def template_strings() -> set[str | tuple[str, str]]:
    """The msgids of every {% translate %} / {% blocktranslate %} of the product's templates."""
    found: set = set()
    call = re.compile(r"\b(n?gettext)\(((?:u'(?:[^'\\]|\\.)*'(?:, )?)+)")
    for folder in TEMPLATE_DIRS:
        for template in folder.rglob("*.html"):
            source = templatize(template.read_text(encoding="utf-8"), origin=str(template))
            for function, arguments in call.findall(source):
                strings = [
                    ast.literal_eval(s) for s in re.findall(r"u'(?:[^'\\]|\\.)*'", arguments)
                ]
                found.add(tuple(strings[:2]) if function == "ngettext" else strings[0])
    return found


@pytest.fixture(scope="module")
def po() -> dict:
    return read_po(MESSAGES / "django.po")


def test_every_entry_of_the_catalogue_is_translated(po):
    assert len(po) > 500
    assert untranslated(po) == []


def test_the_compiled_catalogue_matches_the_po_file(po):
    with (MESSAGES / "django.mo").open("rb") as mo:
        compiled = gettext.GNUTranslations(mo)._catalog
    stale = []
    for key, entry in po.items():
        if isinstance(key, tuple):
            got = [compiled.get((key[0], n)) for n in range(len(entry["msgstr"]))]
        else:
            got = [compiled.get(key)]
        if got != entry["msgstr"]:
            stale.append(key)
    assert stale == [], "run `python manage.py compilemessages` and commit django.mo"


def test_every_string_of_the_templates_is_in_the_catalogue(po):
    strings = template_strings()
    assert {"Dashboard", "Log in", ("%(count)s card", "%(count)s cards")} <= strings
    missing = sorted(map(str, strings - set(po)))
    assert missing == [], "run `python manage.py makemessages -l fr` and translate"


@pytest.mark.skipif(shutil.which("xgettext") is None, reason="needs GNU gettext (xgettext)")
def test_makemessages_finds_no_string_without_a_translation(tmp_path, settings, monkeypatch):
    """Extract again from the code and templates (a copy): nothing new, nothing untranslated."""
    for name in SOURCES:
        shutil.copytree(
            ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    shutil.copytree(ROOT / "locale", tmp_path / "locale")
    settings.LOCALE_PATHS = [tmp_path / "locale"]
    monkeypatch.chdir(tmp_path)
    call_command("makemessages", locale=["fr"], no_location=True, verbosity=0)
    extracted = read_po(tmp_path / "locale" / "fr" / "LC_MESSAGES" / "django.po")
    assert len(extracted) > 500  # strings were found (the others would be obsolete)
    assert untranslated(extracted) == [], "run `python manage.py makemessages -l fr`"
