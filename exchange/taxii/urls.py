"""Routes of the TAXII 2.1 server, mounted at /taxii2/ (one API root: /taxii2/api/)."""

from django.urls import path, re_path

from .base import not_found
from .views import collections, discovery, manifest, objects

app_name = "taxii"

COLLECTION = "api/collections/<str:collection_id>/"
OBJECT = COLLECTION + "objects/<str:object_id>/"

urlpatterns = [
    path("", discovery.DiscoveryView.as_view(), name="discovery"),
    path("api/", discovery.ApiRootView.as_view(), name="api-root"),
    path("api/status/<str:status_id>/", discovery.StatusView.as_view(), name="status"),
    path("api/collections/", collections.CollectionsView.as_view(), name="collections"),
    path(COLLECTION, collections.CollectionView.as_view(), name="collection"),
    path(COLLECTION + "manifest/", manifest.ManifestView.as_view(), name="manifest"),
    path(COLLECTION + "objects/", objects.ObjectsView.as_view(), name="objects"),
    path(OBJECT, objects.ObjectView.as_view(), name="object"),
    path(OBJECT + "versions/", objects.VersionsView.as_view(), name="versions"),
    # Anything else ending in a slash (the slash lets APPEND_SLASH redirect first).
    re_path(r"^(?:.*/)?$", not_found),
]
