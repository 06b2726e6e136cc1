from django.urls import path

from . import views

app_name = "alerts-api"

urlpatterns = [
    path("notifications/", views.NotificationListView.as_view(), name="notifications"),
    path("notifications/unread-count/", views.UnreadCountView.as_view(), name="unread-count"),
    path("notifications/mark-read/", views.MarkReadView.as_view(), name="mark-read"),
    path("notification-policy/", views.PolicyView.as_view(), name="policy"),
    path("assets/", views.AssetListView.as_view(), name="assets"),
    path("assets/<int:asset_id>/", views.AssetDetailView.as_view(), name="asset"),
    path("webhooks/", views.WebhookListView.as_view(), name="webhooks"),
    path("webhooks/<int:endpoint_id>/", views.WebhookDetailView.as_view(), name="webhook"),
    path(
        "webhooks/<int:endpoint_id>/rotate-secret/",
        views.WebhookRotateView.as_view(),
        name="webhook-rotate",
    ),
    path("webhooks/<int:endpoint_id>/test/", views.WebhookTestView.as_view(), name="webhook-test"),
    path("deliveries/", views.DeliveryListView.as_view(), name="deliveries"),
    path("deliveries/<int:delivery_id>/", views.DeliveryDetailView.as_view(), name="delivery"),
    path("deliveries/replay/", views.ReplayView.as_view(), name="replay"),
]
