"""``/api/v2/``: one router mounts every app's resources; the schema and its viewers."""

from __future__ import annotations

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from apps.devicelog.api.views import DeviceLogViewSet
from apps.meters.api.views import MeterViewSet
from apps.rfid.api.views import CardViewSet
from apps.siteconfig.api.views import SiteView
from apps.stations.api.transactions import TransactionExportView, TransactionViewSet
from apps.stations.api.views import StationViewSet
from apps.zones.api.inputs import InputViewSet
from apps.zones.api.views import ZoneViewSet

router = DefaultRouter(trailing_slash="/?")
router.include_root_view = False
router.register("zones", ZoneViewSet, basename="zone")
router.register("stations", StationViewSet, basename="station")
router.register("transactions", TransactionViewSet, basename="transaction")
router.register("cards", CardViewSet, basename="card")
router.register("inputs", InputViewSet, basename="input")
router.register("device-log", DeviceLogViewSet, basename="device-log")
router.register("meters", MeterViewSet, basename="meter")

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    path("site/", SiteView.as_view(), name="site"),
    # Named as SPEC §9 spells it: a file, no trailing slash.
    path("transactions/export.csv", TransactionExportView.as_view(), name="transaction-export"),
    path("", include(router.urls)),
]
