from __future__ import annotations

from django import forms

from library.clinical_history import MAX_CLINICAL_HISTORY_CHARS


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, list | tuple):
            return [single(item, initial) for item in data]
        return [single(data, initial)] if data else []


class CollectionForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)


class ImportForm(forms.Form):
    # Empty files pass here so that the import refuses each by name ("the file is empty").
    files = MultipleFileField(
        allow_empty_file=True, help_text="DICOM, PNG or JPEG files, or zip archives of them"
    )
    labels = forms.FileField(
        required=False,
        allow_empty_file=True,
        help_text="labels CSV: generic (case,label[,mask][,split]), NIH ChestX-ray14 or CheXpert;"
        " any of them may add a clinical_history column",
    )
    masks = MultipleFileField(
        required=False,
        allow_empty_file=True,
        help_text="lesion masks (PNG or NPY) or a zip of them",
    )


class ClinicalHistoryForm(forms.Form):
    clinical_history = forms.CharField(
        required=False,
        strip=False,  # the service cleans it
        max_length=MAX_CLINICAL_HISTORY_CHARS,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Clinical history",
        help_text="shown to readers only in study arms that show the clinical history; "
        "blank: none",
    )
