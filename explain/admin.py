"""Read-mostly admin views; imports and registrations go through the services
(the coordinator pages, the REST API or the commands) so they are validated,
de-identified and audited."""

from django.contrib import admin
from django.db import models

from explain.models import Case, CaseLabel, ClassifierModel, Collection, LesionMask


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


class CaseLabelInline(admin.TabularInline):
    model = CaseLabel
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Collection)
class CollectionAdmin(ReadOnlyAdmin):
    list_display = ("name", "created_at", "created_by")
    search_fields = ("name",)


@admin.register(Case)
class CaseAdmin(ReadOnlyAdmin):
    list_display = ("key", "collection", "source_format", "modality", "rows", "columns", "split")
    list_filter = ("collection", "source_format", "modality", "split")
    search_fields = ("key",)
    inlines = [CaseLabelInline]


@admin.register(LesionMask)
class LesionMaskAdmin(ReadOnlyAdmin):
    list_display = ("case", "label", "pixel_count")


@admin.register(ClassifierModel)
class ClassifierModelAdmin(ReadOnlyAdmin):
    list_display = ("name", "form", "positive_class", "file_sha256", "created_at")
