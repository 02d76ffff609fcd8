"""Local authorisation of a charge point: the local list and the authorisation cache.

They let a station decide on a card by itself — before asking the central
system (LocalPreAuthorize) or while it cannot reach it (LocalAuthorizeOffline).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from ocpp.v16.datatypes import IdTagInfo
from ocpp.v16.enums import AuthorizationStatus, UpdateStatus, UpdateType

from apps.simulator.engine.clock import parse_ocpp_time


def id_tag_info_from_ocpp(data: Mapping[str, Any]) -> IdTagInfo:
    """An ``idTagInfo`` with snake_case keys; a bad status or expiry date raises ValueError."""
    expiry = data.get("expiry_date")
    if expiry:
        parse_ocpp_time(expiry)
    return IdTagInfo(
        status=AuthorizationStatus(data["status"]),
        parent_id_tag=data.get("parent_id_tag"),
        expiry_date=expiry or None,
    )


def accepted_at(info: IdTagInfo, at: datetime) -> bool:
    """Whether ``info`` lets the card charge at ``at``: accepted and not expired."""
    if info.status != AuthorizationStatus.accepted:
        return False
    return not info.expiry_date or at < parse_ocpp_time(info.expiry_date)


class LocalAuthorization:
    """The local authorisation list (versioned, set by SendLocalList) and the cache."""

    def __init__(self, max_list_length: int = 1000, max_update_length: int = 100) -> None:
        self.max_list_length = max_list_length
        self.max_update_length = max_update_length
        self.list_version = 0
        self._list: dict[str, IdTagInfo] = {}
        self._cache: dict[str, IdTagInfo] = {}

    @property
    def local_list(self) -> Mapping[str, IdTagInfo]:
        return dict(self._list)

    def send_local_list(
        self, version: int, update_type: str, entries: Sequence[Mapping[str, Any]]
    ) -> UpdateStatus:
        """SendLocalList: a full replacement or a differential update.

        A differential update must carry a newer version than the list's;
        an entry without ``id_tag_info`` removes that card.
        """
        if len(entries) > self.max_update_length:
            return UpdateStatus.failed
        try:
            parsed = {
                str(entry["id_tag"]): (
                    id_tag_info_from_ocpp(entry["id_tag_info"])
                    if entry.get("id_tag_info")
                    else None
                )
                for entry in entries
            }
        except (KeyError, TypeError, ValueError):
            return UpdateStatus.failed
        if update_type == UpdateType.full:
            new_list = {tag: info for tag, info in parsed.items() if info is not None}
        elif update_type == UpdateType.differential:
            if version <= self.list_version:
                return UpdateStatus.version_mismatch
            new_list = dict(self._list)
            for tag, info in parsed.items():
                if info is None:
                    new_list.pop(tag, None)
                else:
                    new_list[tag] = info
        else:
            return UpdateStatus.failed
        if len(new_list) > self.max_list_length:
            return UpdateStatus.failed
        self._list = new_list
        self.list_version = version
        return UpdateStatus.accepted

    def remember(self, id_tag: str, info: IdTagInfo) -> None:
        """Keep the central system's answer about a card in the cache."""
        self._cache[id_tag] = info

    def clear_cache(self) -> None:
        self._cache.clear()

    def lookup(
        self, id_tag: str, *, use_list: bool = True, use_cache: bool = True
    ) -> IdTagInfo | None:
        """What the station knows locally about ``id_tag`` (the list first), or None."""
        if use_list and id_tag in self._list:
            return self._list[id_tag]
        if use_cache and id_tag in self._cache:
            return self._cache[id_tag]
        return None
