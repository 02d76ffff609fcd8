from __future__ import annotations

import pytest

from tests.e2e.stack import start_stack


@pytest.fixture(scope="session")
def demo_stack(tmp_path_factory):
    """One running evce with the demo site, shared by the end-to-end tests."""
    stack = start_stack(tmp_path_factory.mktemp("evce-demo"))
    yield stack
    stack.stop()
