from django.contrib import admin
from django.urls import include, path

from evce_site.health import health

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", health, name="health"),
    path("api/v2/", include("apps.api.urls")),
]
