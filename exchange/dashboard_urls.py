"""Dashboard routes of the exchange app (its pages that need no other app)."""

from django.urls import path

from . import views

app_name = "intel"

urlpatterns = [
    path("objects/<str:stix_id>/raw/", views.object_raw, name="object_raw"),
]
