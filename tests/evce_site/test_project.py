"""Project-wide guarantees: migrations in step with models, deploy checks, API schema."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parents[2]


def _manage(*args: str, **env: str | None) -> subprocess.CompletedProcess:
    """``manage.py`` in a child process; ``None`` removes a variable from its environment."""
    full_env = {k: v for k, v in {**os.environ, **env}.items() if v is not None}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.django_db
def test_models_and_migrations_are_in_step():
    # Raises SystemExit(1) when a model change has no migration.
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def test_deploy_checks_are_clean_in_production_mode(tmp_path):
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        EVCE_DATA_DIR=str(tmp_path),
        EVCE_DEBUG="0",
        EVCE_HTTPS_ONLY="1",
        EVCE_SECRET_KEY=secrets.token_urlsafe(64),
        EVCE_ALLOWED_HOSTS="evce.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_a_bad_environment_value_stops_the_start_clearly(tmp_path):
    result = _manage("check", EVCE_DATA_DIR=str(tmp_path), EVCE_HTTP_PORT="eighty")
    assert result.returncode != 0
    assert "EVCE_HTTP_PORT='eighty' is not an integer" in result.stderr


def test_a_lease_shorter_than_three_reallocation_ticks_stops_the_start(tmp_path):
    """Live profiles renewed only at ticks would lapse between two renewals."""
    result = _manage(
        "check",
        EVCE_DATA_DIR=str(tmp_path),
        EVCE_SETPOINT_LEASE_S="60",
        EVCE_REBALANCE_PERIOD_S="30",
    )
    assert result.returncode != 0
    assert (
        "EVCE_SETPOINT_LEASE_S=60 must be at least 3 re-allocation ticks "
        "(EVCE_REBALANCE_PERIOD_S=30 s), i.e. 90 s or more." in result.stderr
    )
    accepted = _manage(
        "check",
        EVCE_DATA_DIR=str(tmp_path),
        EVCE_SETPOINT_LEASE_S="30",
        EVCE_REBALANCE_PERIOD_S="10",
    )
    assert accepted.returncode == 0, accepted.stderr


def test_secret_key_is_generated_once_and_kept_private(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "EVCE_SECRET_KEY"}
    code = "from django.conf import settings; print(settings.SECRET_KEY)"
    runs = [
        subprocess.run(
            [sys.executable, "-c", f"import django; django.setup(); {code}"],
            cwd=ROOT,
            env={
                **env,
                "EVCE_DATA_DIR": str(tmp_path),
                "DJANGO_SETTINGS_MODULE": "evce_site.settings",
            },
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.strip()
        for _ in range(2)
    ]
    assert runs[0] == runs[1] and len(runs[0]) >= 50
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_api_schema_is_valid(tmp_path):
    result = _manage(
        "spectacular",
        "--validate",
        "--fail-on-warn",
        "--file",
        str(tmp_path / "schema.yaml"),
        EVCE_DATA_DIR=str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert "openapi: 3" in (tmp_path / "schema.yaml").read_text()
