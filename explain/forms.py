from __future__ import annotations

import json

from django import forms

from explain.compute.catalog import EXPLAINERS
from explain.compute.explainers import FUNCTIONS
from explain.models import ClassifierModel
from library.models import Collection


class ModelRegisterForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    form = forms.ChoiceField(choices=ClassifierModel.Form.choices, label="Form")
    architecture = forms.CharField(required=False, help_text="eager form: package.module:Class")
    init_kwargs = forms.CharField(
        required=False, initial="{}", help_text="constructor arguments as JSON"
    )
    file = forms.FileField(
        help_text="weights (.safetensors, or .pt state_dict) or TorchScript file"
    )
    class_labels = forms.CharField(help_text="comma separated, in output order")
    positive_class = forms.CharField(required=False, help_text="default: the last class")
    input_height = forms.IntegerField(min_value=1, initial=224)
    input_width = forms.IntegerField(min_value=1, initial=224)
    channels = forms.TypedChoiceField(choices=[(1, "1"), (3, "3")], coerce=int, initial=1)
    mean = forms.CharField(initial="0.5", help_text="per channel, comma separated")
    std = forms.CharField(initial="0.25", help_text="per channel, comma separated")
    cam_layer = forms.CharField(required=False, help_text="layer for CAM explainers (eager only)")

    def clean_init_kwargs(self):
        text = self.cleaned_data["init_kwargs"] or "{}"
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"not valid JSON: {exc.msg}") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("must be a JSON object")
        return value

    def _floats(self, field):
        try:
            return [float(x) for x in self.cleaned_data[field].split(",") if x.strip()]
        except ValueError:
            raise forms.ValidationError("comma-separated numbers, one per channel") from None

    def clean_mean(self):
        return self._floats("mean")

    def clean_std(self):
        return self._floats("std")

    def clean_class_labels(self):
        labels = [c.strip() for c in self.cleaned_data["class_labels"].split(",") if c.strip()]
        if not labels:
            raise forms.ValidationError("at least one class label")
        return labels


class PrecomputeForm(forms.Form):
    model = forms.ModelChoiceField(queryset=ClassifierModel.objects.order_by("name"))
    collection = forms.ModelChoiceField(queryset=None)
    explainers = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple, choices=())
    placebo = forms.MultipleChoiceField(
        widget=forms.CheckboxSelectMultiple,
        choices=(),
        required=False,
        help_text="also run these on a weight-randomized copy of the model (placebo explanations)",
    )
    split = forms.CharField(required=False, help_text="only cases of this split, e.g. test")
    force = forms.BooleanField(required=False, help_text="recompute results that already exist")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["collection"].queryset = Collection.objects.order_by("name")
        choices = [(name, info.label) for name, info in EXPLAINERS.items()]
        self.fields["explainers"].choices = choices
        self.fields["placebo"].choices = [c for c in choices if c[0] in FUNCTIONS]  # maps only
