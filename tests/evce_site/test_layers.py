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


def _modules_of(package: str) -> set[str]:
    """The modules and sub-packages directly inside ``package``."""
    folder = ROOT / package.replace(".", "/")
    return {
        f"{package}.{path.stem}"
        for path in folder.iterdir()
        if (path.suffix == ".py" and path.stem != "__init__") or (path / "__init__.py").exists()
    }


def _covered(app: str, names: set[str]) -> bool:
    """An app is named whole, or (split around a layer of its own) module by module."""
    return app in names or _modules_of(app) <= names


def _our_apps() -> set[str]:
    return {
        config.name for config in django_apps.get_app_configs() if config.name.startswith("apps.")
    }


def test_every_app_is_in_a_layer_or_kept_apart():
    """A new app, or a new module of an app named module by module, must be given a layer."""
    contracts = _contracts()
    layered = {name.strip() for name in _layer_modules(contracts["layers"])}
    apart = set(contracts["simulator-apart"]["forbidden_modules"])
    ours = _our_apps()
    assert {app for app in ours - apart if not _covered(app, layered)} == set()
    assert ours - apart <= set(contracts["simulator-apart"]["source_modules"])


def test_the_allocator_is_the_lowest_layer():
    """Every layer may use the pure allocator; the rest of energy sits in the engine."""
    layers = _contracts()["layers"]["layers"]
    assert layers[-1] == "apps.energy.allocator"
    assert "apps.energy.allocator" in _modules_of("apps.energy")


def test_the_simulated_stations_import_no_app_of_evce():
    """Only the allocator's vocabulary is shared with the simulator's engine."""
    contracts = _contracts()
    forbidden = set(contracts["simulator-engine"]["forbidden_modules"])
    apart = set(contracts["simulator-apart"]["forbidden_modules"])
    shared = {"apps.energy.allocator"}
    assert {app for app in _our_apps() - apart if not _covered(app, forbidden | shared)} == set()


def test_only_interface_modules_inside_apps_may_import_upward():
    """The exceptions are rules about interface modules, never single imports."""
    ignored = _contracts()["layers"]["ignore_imports"]
    interface = r"admin|api\.\*\*|management\.\*\*"
    assert all(re.fullmatch(rf"apps\.\*\.({interface}) -> \S+\.\*\*", i) for i in ignored)


def test_the_contracts_are_kept():
    """Also under plain pytest: imports between apps point down the layers."""
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-4000:]
