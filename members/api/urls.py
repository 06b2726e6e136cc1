from django.urls import path

# Registers the OpenAPI descriptions of our authentication schemes wherever the schema can be
# built (it needs the URLconf), and only there: drf-spectacular costs workers and beat ~14 MB.
from .. import schema  # noqa: F401
from . import views

app_name = "members-api"

urlpatterns = [
    path("me/", views.ProfileView.as_view(), name="profile"),
    path("members/", views.PeerListView.as_view(), name="peers"),
    path("trust-groups/", views.TrustGroupListView.as_view(), name="trust-groups"),
    path("users/", views.UserListView.as_view(), name="users"),
    path("users/<int:user_id>/", views.UserDetailView.as_view(), name="user"),
    path("tokens/", views.TokenListView.as_view(), name="tokens"),
    path("tokens/<int:token_id>/", views.TokenDetailView.as_view(), name="token"),
    path("audit-events/", views.AuditEventListView.as_view(), name="audit-events"),
]
