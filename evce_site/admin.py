"""What every app's admin shares: writes go through the services, their refusals are shown."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import transaction
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


def form_values(form, names) -> dict:
    """The cleaned values of the fields ``names`` that the form shows (what a service sets)."""
    return {name: form.cleaned_data[name] for name in names if name in form.cleaned_data}


def formset_written_by_service(formset) -> None:
    """Mark an inline formset as saved by a service (the admin's history reads these)."""
    formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []


class ServiceAdminMixin:
    """Shows a service's ``ValidationError`` as an error message instead of a server error.

    ``save_model``, ``delete_model``, ``delete_queryset`` and the actions call
    services; when one refuses, the admin's transaction is rolled back and the
    page it came from is shown again with the reasons. An admin that deletes
    says how in :meth:`service_delete`; a bulk delete is all or nothing.
    """

    def service_delete(self, request, obj) -> None:
        """Delete one object through its app's service."""
        raise NotImplementedError(f"{type(self).__name__} deletes through no service")

    def delete_model(self, request, obj):
        self.service_delete(request, obj)

    def delete_queryset(self, request, queryset):
        # All or nothing: one object the service refuses keeps every one of them.
        with transaction.atomic():
            for obj in queryset:
                self.service_delete(request, obj)

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


class ReadOnlyAdmin(admin.ModelAdmin):
    """For what evce records (device log, what stations report): shown, never edited by hand.

    ``deletable`` lets staff delete rows by hand (records whose retention is theirs).
    """

    deletable = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return self.deletable and super().has_delete_permission(request, obj)
