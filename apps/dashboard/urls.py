from django.urls import path

from apps.dashboard import views

app_name = "dashboard"

urlpatterns = [
    path("", views.home_view, name="home"),
    path("zones/<int:zone_id>/", views.zone_view, name="zone"),
    path("stations/<str:identity>/", views.station_view, name="station"),
    path("stations/<str:identity>/log.csv", views.station_log_csv_view, name="station_log_csv"),
    path("stations/<str:identity>/actions/", views.station_action_view, name="station_action"),
    path("login/", views.login_view, name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("password/", views.password_change_view, name="password_change"),
]
