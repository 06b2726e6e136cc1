"""Routes of the collective response under /api/v1/ (included from exchange/urls.py)."""

from django.urls import path

from . import response as views

app_name = "response-api"

urlpatterns = [
    path("attack-reports/", views.AttackReportView.as_view(), name="attack-reports"),
    path("activations/", views.ActivationListView.as_view(), name="activations"),
    path("activations/<str:uid>/", views.ActivationDetailView.as_view(), name="activation"),
    path(
        "activations/<str:uid>/timeline/",
        views.ActivationTimelineView.as_view(),
        name="activation-timeline",
    ),
    path(
        "activations/<str:uid>/measures/",
        views.ActivationMeasuresView.as_view(),
        name="activation-measures",
    ),
    path(
        "activations/<str:uid>/aid-requests/",
        views.AidRequestListView.as_view(),
        name="aid-requests",
    ),
    path("aid-requests/<str:uid>/offers/", views.AidOfferView.as_view(), name="aid-offers"),
    path("aid-requests/<str:uid>/close/", views.AidCloseView.as_view(), name="aid-close"),
    path("response-tasks/", views.TaskListView.as_view(), name="tasks"),
    path("response-tasks/<str:uid>/", views.TaskDetailView.as_view(), name="task"),
    path("response/measures/", views.OverallMeasuresView.as_view(), name="measures"),
    path("active-defense/indicators.csv", views.FeedCsvView.as_view(), name="feed-csv"),
    path("active-defense/bundle.json", views.FeedBundleView.as_view(), name="feed-bundle"),
    path("active-defense/<str:name>.txt", views.FeedTextView.as_view(), name="feed-list"),
    path("staff/activations/", views.StaffActivationListView.as_view(), name="staff-activations"),
    path(
        "staff/activations/<str:uid>/",
        views.StaffActivationDetailView.as_view(),
        name="staff-activation",
    ),
    path(
        "staff/activations/<str:uid>/<str:action>/",
        views.StaffActivationActionView.as_view(),
        name="staff-activation-action",
    ),
    path("staff/drills/", views.StaffDrillView.as_view(), name="staff-drills"),
    path("staff/measures/", views.StaffMeasuresView.as_view(), name="staff-measures"),
]
