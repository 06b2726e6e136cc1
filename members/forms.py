"""Dashboard forms of the members app: sign-in, users and tokens. Forms check the shape of the
input; the rules (who may, what is unique) live in `services`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.utils import timezone

from . import throttle
from .choices import Role, Scope
from .models import User


def client_address(request: Any) -> str:
    return str(getattr(request, "META", {}).get("REMOTE_ADDR", "") or "unknown")


class SignInForm(AuthenticationForm):
    """Django's sign-in with throttling by canonical identity and client address, user names
    matched whatever their letter case, and only member users and staff let in."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "throttled": "Too many failed sign-ins. Wait a while and try again.",
        "no_member": "This account belongs to no active member organisation.",
    }

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username") or ""
        address = client_address(self.request)
        if throttle.is_locked(username, address):
            raise ValidationError(self.error_messages["throttled"], code="throttled")
        stored = (
            User.objects.filter(username__iexact=username.strip())
            .values_list("username", flat=True)
            .first()
        )
        if stored is not None:
            self.cleaned_data["username"] = stored
        try:
            cleaned = super().clean()
        except ValidationError:
            throttle.record_failure(username, address)
            raise
        throttle.clear(username)
        return cleaned

    def confirm_login_allowed(self, user: Any) -> None:
        super().confirm_login_allowed(user)
        if user.is_staff:
            return
        if user.member_id is None or not user.member.is_active:
            raise ValidationError(self.error_messages["no_member"], code="no_member")


class UserCreateForm(forms.Form):
    username = forms.RegexField(
        max_length=150,
        regex=r"^[\w.@+-]+\Z",
        error_messages={"invalid": "Letters, digits and @ . + - _ only."},
    )
    email = forms.EmailField(required=False)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.ANALYST)
    password = forms.CharField(
        widget=forms.PasswordInput,
        min_length=12,
        required=True,
        help_text="At least 12 characters; the user can change it after signing in.",
    )

    def clean_password(self) -> str:
        password = str(self.cleaned_data["password"])
        password_validation.validate_password(password)
        return password


class TokenCreateForm(forms.Form):
    name = forms.CharField(max_length=100)
    scopes = forms.MultipleChoiceField(
        choices=Scope.choices, widget=forms.CheckboxSelectMultiple, initial=[Scope.READ]
    )
    expires_in_days = forms.IntegerField(
        min_value=1,
        max_value=3650,
        required=False,
        help_text="Leave empty for a token that does not expire.",
    )

    def expires_at(self) -> Any:
        days = self.cleaned_data.get("expires_in_days")
        return timezone.now() + timedelta(days=days) if days else None
