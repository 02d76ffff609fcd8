"""What every app's admin shares: writes go through the services, their refusals are shown."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect


def validation_messages(exc: ValidationError) -> list[str]:
    """A service's refusal as lines for the admin's messages, with the field where known."""
    if not hasattr(exc, "error_dict"):
        return list(exc.messages)
    return [
        message if field == "__all__" else f"{field}: {message}"
        for field, field_messages in exc.message_dict.items()
        for message in field_messages
    ]


def formset_written_by_service(formset) -> None:
    """Mark an inline formset as saved by a service (the admin's history reads these)."""
    formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []


class ServiceAdminMixin:
    """Shows a service's ``ValidationError`` as an error message instead of a server error.

    ``save_model``, ``delete_model``, ``delete_queryset`` and the actions call
    services; when one refuses, the admin's transaction is rolled back and the
    page it came from is shown again with the reasons.
    """

    def _refused(self, request, exc: ValidationError, redirect_to: str) -> HttpResponseRedirect:
        for line in validation_messages(exc):
            self.message_user(request, line, messages.ERROR)
        return HttpResponseRedirect(redirect_to)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ValidationError as exc:
            return self._refused(request, exc, request.get_full_path())

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except ValidationError as exc:
            return self._refused(request, exc, request.get_full_path().rsplit("delete/", 1)[0])

    def changelist_view(self, request, extra_context=None):
        try:
            return super().changelist_view(request, extra_context)
        except ValidationError as exc:
            return self._refused(request, exc, request.get_full_path())
