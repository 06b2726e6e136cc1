"""Dashboard routes of the members app: sessions and a member admin's users, tokens and audit
log."""

from django.urls import path

from . import views

app_name = "accounts"

urlpatterns = [
    path("accounts/login/", views.SignInView.as_view(), name="login"),
    path("accounts/logout/", views.SignOutView.as_view(), name="logout"),
    path("accounts/password/", views.PasswordChangeView.as_view(), name="password_change"),
    path("settings/users/", views.users, name="users"),
    path("settings/users/<int:user_id>/deactivate/", views.deactivate_user, name="deactivate_user"),
    path("settings/tokens/", views.tokens, name="tokens"),
    path("settings/tokens/<int:token_id>/revoke/", views.revoke_token, name="revoke_token"),
    path("settings/audit/", views.audit_log, name="audit"),
]
