from django.contrib import admin
from django.db import models

from core.models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ("at", "actor_repr", "action", "object_type", "object_repr", "ip", "study_id")
    list_filter = ("action", "object_type")
    search_fields = ("actor_repr", "object_repr", "action")
    readonly_fields = [f.name for f in AuditEntry._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    def get_exclude(self, request, obj=None):
        # Stored files are served only through permission-checked views, never by URL.
        return [f.name for f in self.model._meta.fields if isinstance(f, models.FileField)]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
