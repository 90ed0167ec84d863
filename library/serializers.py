from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from library.clinical_history import MAX_CLINICAL_HISTORY_CHARS
from library.models import Case, Collection


class CollectionSerializer(serializers.ModelSerializer):
    case_count = serializers.IntegerField(read_only=True)
    labelled_count = serializers.IntegerField(read_only=True)
    mask_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Collection
        fields = [
            "id",
            "name",
            "description",
            "created_at",
            "case_count",
            "labelled_count",
            "mask_count",
        ]
        read_only_fields = ["id", "created_at"]


class CollectionCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, default="")


class CaseSerializer(serializers.ModelSerializer):
    labels = serializers.SerializerMethodField()
    has_mask = serializers.SerializerMethodField()
    display_url = serializers.SerializerMethodField()
    pixels_url = serializers.SerializerMethodField()

    class Meta:
        model = Case
        fields = [
            "id",
            "uid",
            "key",
            "source_format",
            "modality",
            "rows",
            "columns",
            "is_color",
            "photometric",
            "bits_stored",
            "frame_index",
            "number_of_frames",
            "window_presets",
            "value_min",
            "value_max",
            "split",
            "clinical_history",
            "labels",
            "has_mask",
            "stored_sha256",
            "display_url",
            "pixels_url",
            "imported_at",
        ]

    def get_labels(self, case) -> dict[str, int]:
        return {label.name: label.value for label in case.labels.all()}

    def get_has_mask(self, case) -> bool:
        return bool(case.masks.all())

    def _url(self, case, kind: str) -> str:
        return reverse("library:case-file", kwargs={"case_id": case.pk, "kind": kind})

    def get_display_url(self, case) -> str:
        return self._url(case, "display")

    def get_pixels_url(self, case) -> str:
        return self._url(case, "pixels")


class CaseUpdateSerializer(serializers.Serializer):
    clinical_history = serializers.CharField(
        allow_blank=True,
        trim_whitespace=False,  # the service cleans it
        max_length=MAX_CLINICAL_HISTORY_CHARS,
        help_text="shown to readers only in study arms that show the clinical history; "
        "blank: none",
    )

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["unknown field"] for name in unknown})
        return super().to_internal_value(data)


class ImportRequestSerializer(serializers.Serializer):
    # Empty files pass here so that the import refuses each by name ("the file is empty").
    files = serializers.ListField(
        child=serializers.FileField(allow_empty_file=True),
        allow_empty=False,
        help_text="DICOM, PNG or JPEG files, or zip archives of them",
    )
    labels = serializers.FileField(required=False, allow_empty_file=True, help_text="labels CSV")
    masks = serializers.ListField(
        child=serializers.FileField(allow_empty_file=True),
        required=False,
        help_text="lesion masks (PNG/NPY) or a zip archive of them, named as in the labels CSV",
    )


class RejectedFileSerializer(serializers.Serializer):
    file = serializers.CharField()
    code = serializers.CharField()
    reason = serializers.CharField()


class ImportReportSerializer(serializers.Serializer):
    collection = serializers.CharField()
    labels_format = serializers.CharField(allow_null=True)
    imported = serializers.IntegerField()
    skipped = serializers.IntegerField()
    rejected = RejectedFileSerializer(many=True)
    imported_keys = serializers.ListField(child=serializers.CharField())
    skipped_files = serializers.ListField(child=serializers.CharField())
