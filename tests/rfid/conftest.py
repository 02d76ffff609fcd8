"""Recorders for the authentication signals (sent after commit)."""

from __future__ import annotations

import pytest

from apps.rfid.signals import auth_groups_changed, cards_changed


def _recorder(signal, uid: str):
    events: list[dict] = []

    def receiver(sender, signal, **kwargs):
        events.append(kwargs)

    signal.connect(receiver, dispatch_uid=uid, weak=False)
    return events


@pytest.fixture
def card_events():
    """Every ``cards_changed`` sent during the test, as its keyword arguments."""
    yield _recorder(cards_changed, "test-cards-changed")
    cards_changed.disconnect(dispatch_uid="test-cards-changed")


@pytest.fixture
def group_events():
    """Every ``auth_groups_changed`` sent during the test."""
    yield _recorder(auth_groups_changed, "test-groups-changed")
    auth_groups_changed.disconnect(dispatch_uid="test-groups-changed")


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run what happens after commit, as it would outside the test transaction."""
    return lambda: django_capture_on_commit_callbacks(execute=True)
