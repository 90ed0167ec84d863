from __future__ import annotations

from rest_framework import serializers

from explain.models import ClassifierModel


class ModelSerializer(serializers.ModelSerializer):
    supported_explainers = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = ClassifierModel
        fields = [
            "id",
            "uid",
            "name",
            "description",
            "form",
            "architecture",
            "init_kwargs",
            "file_sha256",
            "input_spec",
            "class_labels",
            "positive_class",
            "cam_layer",
            "explainers",
            "supported_explainers",
            "registration_check",
            "created_at",
        ]


class ModelRegisterSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    form = serializers.ChoiceField(choices=ClassifierModel.Form.choices)
    architecture = serializers.CharField(required=False, allow_blank=True, default="")
    init_kwargs = serializers.JSONField(required=False, default=dict)
    file = serializers.FileField(
        help_text="weights (safetensors or .pt state_dict) or TorchScript file"
    )
    input_spec = serializers.JSONField(
        help_text='{"size": [H, W], "channels": 1, "mean": [..], "std": [..]}'
    )
    class_labels = serializers.JSONField(help_text="class labels in output order")
    positive_class = serializers.CharField(required=False, allow_blank=True)
    cam_layer = serializers.CharField(required=False, allow_blank=True, default="")


class PrecomputeStartSerializer(serializers.Serializer):
    model = serializers.IntegerField(help_text="model id")
    collection = serializers.IntegerField(help_text="collection id")
    explainers = serializers.ListField(
        child=serializers.JSONField(),
        allow_empty=False,
        help_text='names, or {"explainer": name, "params": {...}, "seed": n}',
    )
    placebo = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    split = serializers.CharField(required=False, allow_blank=True, default="")
    force = serializers.BooleanField(required=False, default=False)
    with_metrics = serializers.BooleanField(required=False, default=True)


class PrecomputeProgressSerializer(serializers.Serializer):
    job = serializers.IntegerField()
    status = serializers.CharField()
    model = serializers.CharField()
    collection = serializers.CharField()
    total = serializers.IntegerField()
    pending = serializers.IntegerField()
    running = serializers.IntegerField()
    done = serializers.IntegerField()
    failed = serializers.IntegerField()
    cancelled = serializers.IntegerField()
    per_config = serializers.DictField(
        child=serializers.DictField(child=serializers.IntegerField())
    )
    failures = serializers.ListField(child=serializers.DictField())
    finished_at = serializers.CharField(allow_null=True)
