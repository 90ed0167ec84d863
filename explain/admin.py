"""Read-mostly admin views; imports and registrations go through the services
(the coordinator pages, the REST API or the commands) so they are validated,
de-identified and audited."""

from django.contrib import admin

from core.admin import ReadOnlyAdmin
from explain.models import ClassifierModel


@admin.register(ClassifierModel)
class ClassifierModelAdmin(ReadOnlyAdmin):
    list_display = ("name", "form", "positive_class", "file_sha256", "created_at")
