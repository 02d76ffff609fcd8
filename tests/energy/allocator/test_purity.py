"""The allocator is a pure library: importing it pulls in no framework or I/O client."""

from __future__ import annotations

from tests.purity import FRAMEWORKS, forbidden_imports


def test_importing_the_allocator_imports_no_framework() -> None:
    assert forbidden_imports("apps.energy.allocator", (*FRAMEWORKS, "redis")) == []
