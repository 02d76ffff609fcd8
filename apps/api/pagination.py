"""Paging of lists: small tables by offset; big ones (later) by cursor (SPEC §9)."""

from __future__ import annotations

from rest_framework.pagination import LimitOffsetPagination


class OffsetPagination(LimitOffsetPagination):
    """``?limit=&offset=``: 100 by default, 1000 at most (a site holds ≥ 1000 stations)."""

    default_limit = 100
    max_limit = 1000
