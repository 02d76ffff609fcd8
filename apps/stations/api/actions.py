"""Remote actions on stations (SPEC §9): what is sent, and what the station answered."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiResponse
from rest_framework import serializers

from apps.api.exceptions import ErrorSerializer
from apps.stations.api.serializers import AVAILABILITIES

COMMAND_ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="Invalid fields, nothing sent."),
    404: OpenApiResponse(ErrorSerializer, description="Unknown station or connector."),
    409: OpenApiResponse(ErrorSerializer, description="The station is offline."),
    502: OpenApiResponse(
        ErrorSerializer, description="The station answered with a CALLERROR (code, description)."
    ),
    504: OpenApiResponse(ErrorSerializer, description="The station did not answer in time."),
}


class AvailabilityWriteSerializer(serializers.Serializer):
    availability = serializers.ChoiceField(choices=AVAILABILITIES)


class AvailabilityAnswerSerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=["accepted", "scheduled", "rejected"],
        help_text="scheduled: applied when the connector's session ends.",
    )


class RemoteStartSerializer(serializers.Serializer):
    connector_id = serializers.IntegerField(min_value=1, max_value=99)
    id_tag = serializers.CharField(max_length=20, help_text="The card the session is for.")


class AcceptedAnswerSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["accepted", "rejected"])


class ResetSerializer(serializers.Serializer):
    type = serializers.ChoiceField(
        choices=["soft", "hard"], help_text="soft: reboot the software; hard: restart the station."
    )


class UnlockSerializer(serializers.Serializer):
    connector_id = serializers.IntegerField(min_value=1, max_value=99)


class UnlockAnswerSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["unlocked", "unlockfailed", "notsupported"])


OCPP_EXAMPLES = [
    OpenApiExample(
        "GetConfiguration of one key",
        value={"key": ["HeartbeatInterval"]},
        request_only=True,
    ),
    OpenApiExample(
        "The station's answer",
        value={
            "configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "60"}]
        },
        response_only=True,
    ),
]
