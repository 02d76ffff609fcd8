"""The allocator's tests need no Django: nothing here touches settings, a database or Redis.

They run alone with ``pytest tests/energy/allocator -p no:django``. Hypothesis
profiles: ``ci`` (2000 examples per property, chosen when ``CI`` is set) and
``dev`` (200). The suite's root conftest registers the same ones; they are
registered here too when missing, so this folder does not depend on it.
"""

from __future__ import annotations

import os

from hypothesis import settings
from hypothesis.errors import InvalidArgument

PROFILE_EXAMPLES = {"ci": 2000, "dev": 200}


def _ensure_profiles() -> None:
    missing = False
    for name, examples in PROFILE_EXAMPLES.items():
        try:
            settings.get_profile(name)
        except InvalidArgument:
            settings.register_profile(name, max_examples=examples, deadline=None)
            missing = True
    if missing:
        settings.load_profile("ci" if os.environ.get("CI") else "dev")


_ensure_profiles()
