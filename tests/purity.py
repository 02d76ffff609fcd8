"""Checks that a framework-free module stays so: import it alone, list what it pulled in."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
FRAMEWORKS = ("django", "celery", "channels", "rest_framework")


def forbidden_imports(module: str, forbidden: tuple[str, ...] = FRAMEWORKS) -> list[str]:
    """Modules of ``forbidden`` packages that importing ``module`` alone loads."""
    script = f"import json, sys\nimport {module}\nprint(json.dumps(sorted(sys.modules)))\n"
    output = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env={"PYTHONPATH": str(REPOSITORY), "PATH": ""},
    ).stdout
    loaded = json.loads(output)
    assert module in loaded
    return [name for name in loaded if name.split(".")[0] in forbidden]
