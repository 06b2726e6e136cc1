"""Top-level routes: the REST API under /api/v1/, its schema and docs, admin, health, and the
dashboard pages."""

from django.contrib import admin
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView


def health(request: HttpRequest) -> JsonResponse:
    """Liveness plus a database round trip, for load balancers and compose health checks."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("health/", health, name="health"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("members.api.urls")),
    path("api/v1/", include("exchange.api.urls")),
    path("api/v1/", include("alerts.api.urls")),
    path("api/v1/", include("alerts.api.response_urls")),
    path("taxii2/", include("exchange.taxii.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="docs"),
    # The dashboard (session sign-in, CSRF): pages at the root, sign-in at /accounts/login/.
    path("", include("members.urls")),
    path("", include("exchange.dashboard_urls")),
    path("", include("alerts.urls")),
]

# What no view answered (unknown URLs, refused requests, crashes), in each surface's language and
# without internals: see errorpages.
handler400 = "exchange.errorpages.bad_request"
handler403 = "exchange.errorpages.permission_denied"
handler404 = "exchange.errorpages.page_not_found"
handler500 = "exchange.errorpages.server_error"
