"""The configuration: read in one module, documented in the README, checked at start-up."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings

from tests.evce_site.test_project import _manage

ROOT = Path(__file__).resolve().parents[2]


def readme_variables() -> list[str]:
    """The variable names of the README's configuration table, one per row."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    names = []
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert len(cells) == 3, f"a row needs name, default and meaning: {row}"
        assert all(cells), f"a row has an empty cell: {row}"
        names.append(cells[0].strip("`"))
    return names


def test_the_readme_documents_exactly_the_variables_settings_read():
    documented = readme_variables()
    assert len(documented) == len(set(documented)), "a variable is documented twice"
    read = set(settings.ENV_VARIABLES)
    assert sorted(read - set(documented)) == [], "read by the settings, missing in the README"
    assert sorted(set(documented) - read) == [], "in the README, never read by the settings"


def test_no_code_but_the_settings_reads_the_environment():
    reads = re.compile(r"\bos\.(environ|getenv)\b|\bgetenv\(")
    offenders = []
    for path in [*ROOT.glob("apps/**/*.py"), *ROOT.glob("evce_site/**/*.py"), ROOT / "manage.py"]:
        if path == ROOT / "evce_site" / "env.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            # Naming the settings module for Django is not configuration.
            if reads.search(line) and 'setdefault("DJANGO_SETTINGS_MODULE"' not in line:
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("EVCE_BIND", "localhost", "EVCE_BIND='localhost' is not an IP address"),
        ("EVCE_DEMO", "maybe", "EVCE_DEMO='maybe' is not a boolean"),
        ("EVCE_WORKER_CONCURRENCY", "0", "EVCE_WORKER_CONCURRENCY=0 is below the minimum 1"),
        ("EVCE_DEMO_METER_PORT", "70000", "EVCE_DEMO_METER_PORT=70000 is above the maximum"),
        ("EVCE_RETENTION_PERIOD_S", "0", "EVCE_RETENTION_PERIOD_S=0 is below the minimum 1"),
        ("EVCE_TIME_ZONE", "Mars/Olympus", "EVCE_TIME_ZONE='Mars/Olympus' is not a known"),
        ("EVCE_LOG_LEVEL", "loud", "EVCE_LOG_LEVEL='loud' is not one of DEBUG, INFO"),
        ("EVCE_SECRET_KEY_FILE", "/nonexistent/key", "EVCE_SECRET_KEY_FILE='/nonexistent/key'"),
    ],
)
def test_a_bad_value_stops_the_start_up_naming_the_variable(tmp_path, name, value, message):
    result = _manage("check", EVCE_DATA_DIR=str(tmp_path), **{name: value})
    assert result.returncode != 0
    assert message in result.stderr


def test_secrets_can_come_from_files(tmp_path):
    key = tmp_path / "secret_key"
    key.write_text("k" * 60 + "\n")
    database = tmp_path / "database_url"
    database.write_text(f"sqlite:///{tmp_path / 'from-file.sqlite3'}\n")
    result = _manage(
        "shell",
        "-c",
        "from django.conf import settings as s; "
        "print(len(s.SECRET_KEY), s.SECRET_KEY[-1], s.DATABASES['default']['NAME'])",
        EVCE_DATA_DIR=str(tmp_path),
        EVCE_SECRET_KEY_FILE=str(key),
        DATABASE_URL_FILE=str(database),
        EVCE_SECRET_KEY=None,  # the file replaces what the test run may have set
        DATABASE_URL=None,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].split() == [
        "60",
        "k",
        str(tmp_path / "from-file.sqlite3"),
    ]
