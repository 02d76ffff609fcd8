"""The layer contracts (pyproject.toml, `lint-imports` in `make test`) cover every app."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from django.apps import apps as django_apps

ROOT = Path(__file__).resolve().parents[2]


def _contracts() -> dict[str, dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {contract["id"]: contract for contract in config["contracts"]}


def _layer_modules(contract: dict) -> list[str]:
    return [name for layer in contract["layers"] for name in re.split(r"[|:]", layer)]


def test_every_app_is_in_a_layer_or_kept_apart():
    """A new app cannot escape the contracts: it must be given a layer."""
    contracts = _contracts()
    layered = {name.strip() for name in _layer_modules(contracts["layers"])}
    apart = set(contracts["simulator-apart"]["forbidden_modules"])
    ours = {
        config.name for config in django_apps.get_app_configs() if config.name.startswith("apps.")
    }
    assert ours - layered - apart == set()
    assert ours - apart <= set(contracts["simulator-apart"]["source_modules"])


def test_only_interface_modules_inside_apps_may_import_upward():
    """The exceptions are rules about interface modules, never single imports."""
    ignored = _contracts()["layers"]["ignore_imports"]
    assert all(re.fullmatch(r"apps\.\*\.(admin|management\.\*\*) -> \S+\.\*\*", i) for i in ignored)


def test_the_contracts_are_kept():
    """Also under plain pytest: imports between apps point down the layers."""
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-4000:]
