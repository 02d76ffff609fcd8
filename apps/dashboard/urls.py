from django.urls import path

from apps.dashboard import cards, maintenance, transactions, views

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

# Sessions, cards and groups (SPEC §12 "Web addresses").
urlpatterns += [
    path("transactions/", transactions.transactions_view, name="transactions"),
    path(
        "transactions/export.csv",
        transactions.transactions_export_view,
        name="transactions_export",
    ),
    path("cards/", cards.cards_view, name="cards"),
    path("cards/new/", cards.card_create_view, name="card_create"),
    path("cards/bulk/", cards.cards_bulk_view, name="cards_bulk"),
    path("cards/import/", cards.cards_import_view, name="cards_import"),
    path("cards/export.csv", cards.cards_export_view, name="cards_export"),
    path("cards/<int:pk>/", cards.card_edit_view, name="card_edit"),
    path("cards/<int:pk>/delete/", cards.card_delete_view, name="card_delete"),
    path("groups/", cards.groups_view, name="groups"),
    path("groups/new/", cards.group_create_view, name="group_create"),
    path("groups/<int:pk>/", cards.group_edit_view, name="group_edit"),
    path("groups/<int:pk>/delete/", cards.group_delete_view, name="group_delete"),
]

# Maintenance (SPEC §10).
urlpatterns += [
    path("maintenance/log/", maintenance.device_log_view, name="device_log"),
    path("maintenance/log.csv", maintenance.device_log_export_view, name="device_log_export"),
    path("maintenance/report.zip", maintenance.device_report_view, name="device_report"),
]
