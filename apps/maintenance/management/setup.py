"""First start: demo site and first administrator account (for ``manage.py serve``).

An interface like the commands: it imports the site file to load the demo site.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction

from apps.accounts.models import Role, User
from apps.accounts.validators import PASSWORD_SPECIALS, password_problems
from apps.devicelog.models import EventCategory
from apps.devicelog.services import device_log_write
from apps.sitefile.sitefile import site_import
from apps.stations.models import Station
from apps.zones.models import Zone

DEMO_SITE_FILE = Path(settings.BASE_DIR) / "apps" / "sitefile" / "demo" / "site.yaml"
DEMO_METER_PORT_IN_FILE = 5020
FIRST_ADMIN_USERNAME = "installer"


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str
    path: Path


def is_empty_install() -> bool:
    return not Zone.objects.exists() and not Station.objects.exists()


def demo_marker() -> Path:
    return settings.DATA_DIR / "demo-site"


def demo_meter_port() -> int:
    return settings.DEMO_METER_PORT


def load_demo_site() -> str:
    """Import the demo site; its meters are served by the simulator on the demo port."""
    text = DEMO_SITE_FILE.read_text().replace(
        f"port: {DEMO_METER_PORT_IN_FILE},", f"port: {demo_meter_port()},"
    )
    result = site_import(text, source=str(DEMO_SITE_FILE))
    demo_marker().write_text(f"{demo_meter_port()}\n")
    return result.site_name


def is_demo_install() -> bool:
    return demo_marker().exists()


def installed_demo_meter_port() -> int:
    """The port the demo's meters were configured with when the demo was loaded."""
    try:
        return int(demo_marker().read_text().strip())
    except (OSError, ValueError):
        return demo_meter_port()


def generate_password(length: int = 16) -> str:
    """A random password that satisfies the password rules."""
    alphabet = string.ascii_letters + string.digits + PASSWORD_SPECIALS
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(length))
        if not password_problems(candidate):
            return candidate


def _still_valid_credentials(path: Path) -> Credentials | None:
    """The generated credentials, as long as nobody changed that password."""
    if not path.exists():
        return None
    username, _, password = path.read_text().strip().partition(" ")
    user = User.objects.filter(username=username).first()
    if user is None or not user.check_password(password):
        path.unlink(missing_ok=True)
        return None
    return Credentials(username, password, path)


def ensure_first_admin() -> Credentials | None:
    """Create an administrator when there is no user at all.

    The password is random, printed once by ``serve`` and kept in a file
    readable only by its owner in the data dir, so a newcomer can log in.
    """
    path = settings.DATA_DIR / "first-admin.txt"
    with transaction.atomic():
        if User.objects.exists():
            return _still_valid_credentials(path)
        password = generate_password()
        User.objects.create_user(username=FIRST_ADMIN_USERNAME, password=password, role=Role.ADMIN)
    path.write_text(f"{FIRST_ADMIN_USERNAME} {password}\n")
    path.chmod(0o600)
    device_log_write(
        category=EventCategory.SECURITY,
        event="user_created",
        message=f"First administrator '{FIRST_ADMIN_USERNAME}' created at first start.",
    )
    return Credentials(FIRST_ADMIN_USERNAME, password, path)
