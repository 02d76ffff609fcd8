from django.contrib import admin
from django.urls import include, path

from apps.api.metrics import metrics
from evce_site.health import health

urlpatterns = [
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("healthz", health, name="health"),
    path("metrics", metrics, name="metrics"),
    path("api/v2/", include("apps.api.urls")),
    path("", include("apps.dashboard.urls")),
]
