"""Local authorisation list and cache (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ocpp.v16.enums import UpdateStatus

from apps.simulator.engine.auth import LocalAuthorization, accepted_at

T0 = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)


def test_local_list_full_and_differential_updates() -> None:
    auth = LocalAuthorization()
    accepted = {"status": "Accepted"}
    assert auth.send_local_list(1, "Full", [{"id_tag": "A", "id_tag_info": accepted}]) is (
        UpdateStatus.accepted
    )
    assert auth.send_local_list(1, "Differential", []) is UpdateStatus.version_mismatch
    update = [{"id_tag": "A"}, {"id_tag": "B", "id_tag_info": {"status": "Blocked"}}]
    assert auth.send_local_list(2, "Differential", update) is UpdateStatus.accepted
    assert auth.lookup("A") is None
    assert auth.lookup("B").status == "Blocked"
    assert auth.list_version == 2
    assert auth.send_local_list(3, "Full", [{"nope": 1}]) is UpdateStatus.failed


def test_cache_and_expiry() -> None:
    auth = LocalAuthorization()
    expiry = (T0 + timedelta(hours=1)).isoformat()
    auth.send_local_list(
        1, "Full", [{"id_tag": "A", "id_tag_info": {"status": "Accepted", "expiry_date": expiry}}]
    )
    info = auth.lookup("A")
    assert accepted_at(info, T0)
    assert not accepted_at(info, T0 + timedelta(hours=1))
    assert auth.lookup("A", use_list=False) is None
    auth.remember("C", info)
    assert auth.lookup("C") is info
    auth.clear_cache()
    assert auth.lookup("C") is None
