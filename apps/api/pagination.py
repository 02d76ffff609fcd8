"""Paging of lists: small tables by offset; big ones by cursor (SPEC §9)."""

from __future__ import annotations

from rest_framework import pagination
from rest_framework.pagination import LimitOffsetPagination


class OffsetPagination(LimitOffsetPagination):
    """``?limit=&offset=``: 100 by default, 1000 at most (a site holds ≥ 1000 stations)."""

    default_limit = 100
    max_limit = 1000


class CursorPagination(pagination.CursorPagination):
    """``?cursor=&limit=`` for tables that hold millions (SPEC §9): keyset paging, newest
    first, each page an index range however deep it is; 100 by default, 1000 at most."""

    ordering = "-id"
    page_size = 100
    page_size_query_param = "limit"
    max_page_size = 1000
