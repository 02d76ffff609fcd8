"""Hot state of meters in Redis: the one module that knows its keys.

The poller (:func:`apps.meters.services.meters_poll`) writes one JSON record
per meter after each poll; :mod:`apps.meters.selectors` turns them into typed
:class:`~apps.meters.selectors.MeterState` objects for everyone else.
"""

from __future__ import annotations

import json
from typing import Any

from evce_site.hotstate import key, redis_client


class MeterStatus:
    CONNECTED = "connected"
    ERROR = "error"  # failing, not yet lost: its last good values still count
    LOST = "lost"
    NOT_CONNECTED = "not_connected"  # never read


def _hot_key(meter_id: int) -> str:
    return key("meter", meter_id)


def meter_hot_state(meter_id: int) -> dict[str, Any] | None:
    """The latest record of a meter: status, failures, values, read_at (ISO)…"""
    raw = redis_client().get(_hot_key(meter_id))
    return json.loads(raw) if raw else None


def meters_hot_state(meter_ids: list[int]) -> dict[int, dict[str, Any]]:
    """:func:`meter_hot_state` of many meters in one round trip (never-read meters left out)."""
    if not meter_ids:
        return {}
    raws = redis_client().mget([_hot_key(i) for i in meter_ids])
    return {i: json.loads(raw) for i, raw in zip(meter_ids, raws, strict=True) if raw}


def meters_hot_state_set(records: dict[int, dict[str, Any]]) -> None:
    """Replace the records of these meters, in one round trip."""
    if not records:
        return
    pipe = redis_client().pipeline()
    for meter_id, record in records.items():
        pipe.set(_hot_key(meter_id), json.dumps(record))
    pipe.execute()
