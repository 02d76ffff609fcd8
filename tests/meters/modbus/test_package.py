from __future__ import annotations

from tests.purity import forbidden_imports


def test_modbus_layer_imports_no_framework():
    """Celery tasks, commands and the meter simulator use it without Django settings."""
    assert forbidden_imports("apps.meters.modbus") == []
