"""Read-only admin listings. Studies are configured through the coordinator pages and the API
(validated and audited); arms are not listed here at all, and nothing shown reveals which
explainer an arm is (that is the statistician's audited reveal)."""

from django.contrib import admin

from explain.admin import ReadOnlyAdmin
from studies.models import Enrollment, Invitation, ReaderProfile, Study, StudyRole


@admin.register(Study)
class StudyAdmin(ReadOnlyAdmin):
    list_display = ("title", "status", "design", "protocol", "created_at", "opened_at", "closed_at")
    list_filter = ("status", "design")
    fields = ("title", "description", "status", "design", "protocol", "sessions", "washout_days",
              "consent_version", "created_at", "created_by", "opened_at", "closed_at")


@admin.register(StudyRole)
class StudyRoleAdmin(ReadOnlyAdmin):
    list_display = ("study", "user", "role", "added_at")
    list_filter = ("role",)


@admin.register(Invitation)
class InvitationAdmin(ReadOnlyAdmin):
    list_display = ("study", "email", "created_at", "expires_at", "accepted_at", "revoked_at")
    fields = ("study", "email", "created_at", "created_by", "expires_at", "accepted_at", "revoked_at", "user")


@admin.register(Enrollment)
class EnrollmentAdmin(ReadOnlyAdmin):
    list_display = ("study", "reader", "reader_index", "enrolled_at", "consented_at", "last_activity_at")
    fields = ("study", "reader", "reader_index", "algorithm", "enrolled_at", "consent_version", "consented_at")


@admin.register(ReaderProfile)
class ReaderProfileAdmin(ReadOnlyAdmin):
    list_display = ("user", "years_experience", "specialty", "is_radiologist")
