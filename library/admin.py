"""Read-only admin of the case library (imports go through the services)."""

from django.contrib import admin

from core.admin import ReadOnlyAdmin
from library.models import Case, CaseLabel, Collection, LesionMask


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
