"""The admin's read-only records: what can be deleted by hand, and what never changes."""

import pytest
from django.contrib import admin

from apps.central_system.models import CommandResult
from apps.devicelog.models import DeviceLogEntry
from apps.meters.models import MeterRecord
from apps.stations.models import MeterSample, OcppMessage, Transaction


@pytest.mark.parametrize(
    ("model", "deletable"),
    [
        (DeviceLogEntry, False),
        (Transaction, False),
        (MeterSample, False),
        (OcppMessage, False),
        (MeterRecord, True),
        (CommandResult, True),
    ],
)
def test_records_are_never_added_or_changed_by_hand(rf, admin_user, model, deletable):
    request = rf.get("/")
    request.user = admin_user
    model_admin = admin.site._registry[model]
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert model_admin.has_delete_permission(request) is deletable
