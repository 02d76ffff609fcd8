"""Liveness probe used by the supervisor, Docker and load balancers."""

from __future__ import annotations

from django.db import connection
from django.http import JsonResponse


def health(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
