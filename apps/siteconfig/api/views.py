"""``/api/v2/site``: the site at a glance, what a supervisor shows on its first page."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.energy.selectors import site_status
from apps.siteconfig.models import SupervisionMode

SESSION_STATES = ["charging", "suspendedev", "suspendedevse", "finishing"]


def _phases(help_text: str, **kwargs) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.FloatField(),
        min_length=3,
        max_length=3,
        help_text=f"{help_text} Per phase: L1, L2, L3.",
        **kwargs,
    )


class SessionCountsSerializer(serializers.Serializer):
    charging = serializers.IntegerField(default=0)
    suspendedev = serializers.IntegerField(default=0)
    suspendedevse = serializers.IntegerField(default=0)
    finishing = serializers.IntegerField(default=0)
    total = serializers.IntegerField()


class SiteSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="The device name.")
    supervision_mode = serializers.ChoiceField(choices=SupervisionMode.values)
    zones_count = serializers.IntegerField()
    stations_count = serializers.IntegerField(help_text="Installed stations.")
    connectors_count = serializers.IntegerField()
    stations_connected = serializers.IntegerField()
    sessions = SessionCountsSerializer(help_text="Running sessions by state.")
    current_a = _phases(
        "Measured at the top zones (A); null when none has a usable meter.", allow_null=True
    )
    power_w = serializers.FloatField(allow_null=True, help_text="Measured at the top zones (W).")
    setpoint_current_a = _phases("Allocated at the top zones (A).")
    setpoint_power_w = serializers.FloatField(help_text="Allocated at nominal voltage (W).")


class SiteView(APIView):
    @extend_schema(summary="The site at a glance", responses=SiteSerializer)
    def get(self, request):
        status = site_status()
        sessions = {state: status.sessions.get(state, 0) for state in SESSION_STATES}
        sessions["total"] = sum(status.sessions.values())
        data = {
            "name": status.name,
            "supervision_mode": status.supervision_mode,
            "zones_count": status.zones_count,
            "stations_count": status.stations_count,
            "connectors_count": status.connectors_count,
            "stations_connected": status.stations_connected,
            "sessions": sessions,
            "current_a": status.current_a,
            "power_w": status.power_w,
            "setpoint_current_a": status.setpoint_current_a,
            "setpoint_power_w": status.setpoint_power_w,
        }
        return Response(SiteSerializer(data).data)
