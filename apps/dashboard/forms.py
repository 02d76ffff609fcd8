"""The forms of the web UI: they parse and word errors; the accounts services decide."""

from __future__ import annotations

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.password_validation import password_validators_help_text_html
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.accounts.services import LoginRefused
from apps.dashboard.login import refusal_message, site_login


class AdminLoginForm(AdminAuthenticationForm):
    """The Django admin's login, through the same lockout and security events as /login/."""

    def clean(self):
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if username is not None and password:
            try:
                self.user_cache = site_login(username, password, self.request)
            except LoginRefused as refused:
                raise ValidationError(refusal_message(refused), code=refused.reason.value) from None
            self.confirm_login_allowed(self.user_cache)
        return self.cleaned_data


class LoginForm(forms.Form):
    username = forms.CharField(label=gettext_lazy("User name"), max_length=150)
    password = forms.CharField(
        label=gettext_lazy("Password"), strip=False, widget=forms.PasswordInput
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["username"].widget.attrs.update(autofocus=True, autocomplete="username")
        self.fields["password"].widget.attrs.update(autocomplete="current-password")


class PasswordChangeForm(forms.Form):
    old_password = forms.CharField(
        label=gettext_lazy("Current password"), strip=False, widget=forms.PasswordInput
    )
    new_password = forms.CharField(
        label=gettext_lazy("New password"),
        strip=False,
        widget=forms.PasswordInput,
        help_text=password_validators_help_text_html,
    )
    new_password_again = forms.CharField(
        label=gettext_lazy("New password again"), strip=False, widget=forms.PasswordInput
    )

    def clean(self):
        data = super().clean()
        if (
            data.get("new_password")
            and data.get("new_password_again") is not None
            and data["new_password"] != data["new_password_again"]
        ):
            self.add_error("new_password_again", _("The two new passwords differ."))
        return data


# --- the station view ---------------------------------------------------------------


class OcppLogFilterForm(forms.Form):
    """The OCPP log's filters (GET); times are the site's local time."""

    action = forms.ChoiceField(label=gettext_lazy("Action"), required=False)
    direction = forms.ChoiceField(
        label=gettext_lazy("Direction"),
        required=False,
        choices=[
            ("", gettext_lazy("both")),
            ("in", gettext_lazy("station → evce")),
            ("out", gettext_lazy("evce → station")),
        ],
    )
    since = forms.DateTimeField(
        label=gettext_lazy("From"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local", "step": 1}),
    )
    until = forms.DateTimeField(
        label=gettext_lazy("Until"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local", "step": 1}),
    )
    after = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, actions: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["action"].choices = [("", gettext_lazy("all"))] + [(a, a) for a in actions]

    def clean_after(self):
        from apps.stations.selectors import LogCursor

        token = self.cleaned_data.get("after") or ""
        if not token:
            return None
        try:
            return LogCursor.parse(token)
        except ValueError:
            raise ValidationError(
                _("This page link is not valid any more: start again from the first page.")
            ) from None

    def clean(self):
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and since >= until:
            self.add_error("until", _("The end must come after the start."))
        return data
