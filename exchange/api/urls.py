from django.urls import path

from . import views

app_name = "exchange-api"

urlpatterns = [
    path("bundles/", views.BundleView.as_view(), name="bundles"),
    path("status/<str:status_id>/", views.StatusView.as_view(), name="status"),
    path("objects/", views.ObjectListView.as_view(), name="objects"),
    path("objects/<str:stix_id>/", views.ObjectDetailView.as_view(), name="object"),
    path("objects/<str:stix_id>/versions/", views.ObjectVersionsView.as_view(), name="versions"),
    path("objects/<str:stix_id>/sightings/", views.ObjectSightingsView.as_view(),
         name="sightings"),
]
