"""What the admin page tests share: an object's change page, and live figures to show on it."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from apps.energy import state
from apps.energy.allocator import Ranking


def change_page(client, obj) -> str:
    """The text of ``obj``'s admin change page, which must open."""
    meta = obj._meta
    url = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def allocation_results_store(
    *,
    sessions: dict[str, dict[str, Any]] | None = None,
    zones: dict[int, dict[str, Any]] | None = None,
) -> None:
    """Store an allocation's results in the hot state, as the control loop does."""
    state.save_results(Ranking(keys=(), ranked_at_s=0.0), sessions or {}, zones or {})
