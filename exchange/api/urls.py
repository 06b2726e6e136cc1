from django.urls import path

from . import integrations, views

app_name = "exchange-api"

urlpatterns = [
    path("bundles/", views.BundleView.as_view(), name="bundles"),
    path("status/<str:status_id>/", views.StatusView.as_view(), name="status"),
    path("objects/", views.ObjectListView.as_view(), name="objects"),
    path("objects/<str:stix_id>/", views.ObjectDetailView.as_view(), name="object"),
    path("objects/<str:stix_id>/versions/", views.ObjectVersionsView.as_view(), name="versions"),
    path("objects/<str:stix_id>/sightings/", views.ObjectSightingsView.as_view(), name="sightings"),
    # Integrations: exports, lookup, SIEM sightings, MISP, false positives.
    path("exports/indicators.csv", integrations.CsvExportView.as_view(), name="export-csv"),
    path(
        "exports/suricata.rules", integrations.SuricataExportView.as_view(), name="export-suricata"
    ),
    path("exports/snort.rules", integrations.SnortExportView.as_view(), name="export-snort"),
    path("exports/bundle.json", integrations.BundleExportView.as_view(), name="export-bundle"),
    path("exports/misp.json", integrations.MispExportView.as_view(), name="export-misp"),
    path("exports/<str:name>.txt", integrations.TextListView.as_view(), name="export-list"),
    path("lookup/", integrations.LookupView.as_view(), name="lookup"),
    path("sightings/", integrations.SiemSightingsView.as_view(), name="siem-sightings"),
    path("misp/events/", integrations.MispImportView.as_view(), name="misp-import"),
    path(
        "objects/<str:stix_id>/false-positive/",
        integrations.FalsePositiveView.as_view(),
        name="false-positive",
    ),
]
