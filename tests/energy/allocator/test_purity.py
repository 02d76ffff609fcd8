"""The allocator is a pure library: importing it pulls in no framework or I/O client."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[3]
FORBIDDEN = ("django", "celery", "channels", "redis")


def test_importing_the_allocator_imports_no_framework() -> None:
    script = (
        "import json, sys\nimport apps.energy.allocator\nprint(json.dumps(sorted(sys.modules)))\n"
    )
    output = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(REPOSITORY), "PATH": ""},
    ).stdout
    modules = json.loads(output)
    leaked = [
        name for name in modules if any(name == f or name.startswith(f"{f}.") for f in FORBIDDEN)
    ]
    assert leaked == []
    assert "apps.energy.allocator" in modules
