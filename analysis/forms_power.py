"""The form of the sample-size page (views_power.py); the study's own pilot is
`analysis.selectors.study_pilot`, shared with `manage.py power`.

The form only parses input; the computation is `analysis.stats.power.plan`.
"""

from __future__ import annotations

import re

from django import forms

from analysis.selectors import StudyPilot
from analysis.stats.mrmc import VarianceComponents
from analysis.stats.power import (
    MAX_CASES,
    MAX_READERS,
    POWER_ANALYSES,
    PowerPlan,
    assumed_components,
    plan,
)

MAX_VALUES = 10  # reader or case counts in one request: the table stays short and quick
ANALYSIS_CHOICES = [
    ("rrrc", "random readers, random cases (RRRC)"),
    ("frrc", "fixed readers, random cases (FRRC)"),
    ("rrfc", "random readers, fixed cases (RRFC)"),
    ("all", "all three"),
]
COMPONENT_FIELDS = ("var_tr", "var_error", "cov1", "cov2", "cov3", "pilot_cases")


def _numbers(text: str, kind, label: str) -> list:
    parts = [p for p in re.split(r"[\s,;]+", text or "") if p]
    values, bad = [], []
    for part in parts:
        try:
            values.append(kind(part))
        except ValueError:
            bad.append(part)
    if bad:
        raise forms.ValidationError(f"{label}: not a number: {', '.join(bad[:5])}")
    if len(values) > MAX_VALUES:
        raise forms.ValidationError(f"{label}: at most {MAX_VALUES} values, not {len(values)}")
    return values


def _counts(text: str, label: str, low: int, high: int) -> list[int]:
    values = _numbers(text, int, label)
    out = [v for v in values if not low <= v <= high]
    if out:
        raise forms.ValidationError(f"{label}: each must be from {low} to {high}, not {out[0]}")
    return sorted(set(values))


class PowerForm(forms.Form):
    readers = forms.CharField(
        required=False, help_text="numbers of readers, separated by spaces (e.g. 4 6 8)"
    )
    cases = forms.CharField(
        required=False, help_text="numbers of cases each reader reads (e.g. 100 200)"
    )
    aucs = forms.CharField(
        label="Assumed arm AUCs", help_text="one per arm, at least two (e.g. 0.85 0.90 0.92)"
    )
    alpha = forms.FloatField(initial=0.05, min_value=0.0001, max_value=0.5)
    target_power = forms.FloatField(
        required=False,
        min_value=0.01,
        max_value=0.9999,
        help_text="optional: the cases needed for each reader count and the readers needed for "
        "each case count",
    )
    analysis = forms.ChoiceField(choices=ANALYSIS_CHOICES, initial="rrrc")
    var_tr = forms.FloatField(required=False, label="Var(T*R)")
    var_error = forms.FloatField(required=False, label="Var(error)")
    cov1 = forms.FloatField(required=False, label="Cov1")
    cov2 = forms.FloatField(required=False, label="Cov2")
    cov3 = forms.FloatField(required=False, label="Cov3")
    pilot_cases = forms.IntegerField(
        required=False, min_value=1, label="Cases per reader and arm behind these components"
    )

    def __init__(self, *args, pilot: StudyPilot, **kwargs):
        super().__init__(*args, **kwargs)
        self.pilot = pilot
        if pilot.result is not None:
            for name in COMPONENT_FIELDS:
                del self.fields[name]
            self.fields["aucs"].initial = " ".join(f"{auc:.4f}" for _, auc in pilot.arm_aucs)

    def clean_readers(self) -> list[int]:
        return _counts(self.cleaned_data.get("readers", ""), "readers", 2, MAX_READERS)

    def clean_cases(self) -> list[int]:
        return _counts(self.cleaned_data.get("cases", ""), "cases", 2, MAX_CASES)

    def clean_aucs(self) -> list[float]:
        values = _numbers(self.cleaned_data.get("aucs", ""), float, "assumed AUCs")
        if len(values) < 2 or not all(0 <= v <= 1 for v in values):
            raise forms.ValidationError("give at least two assumed AUCs, each from 0 to 1")
        return values

    def clean(self):
        data = super().clean()
        readers, cases = data.get("readers"), data.get("cases")
        if readers is not None and cases is not None:
            if data.get("target_power") is None and not (readers and cases):
                self.add_error(None, "give readers and cases for a power table")
            elif not (readers or cases):
                self.add_error(None, "give readers (to find cases) or cases (to find readers)")
        if self.pilot.result is None:
            for name in COMPONENT_FIELDS:
                if name in self.fields and data.get(name) is None and name not in self.errors:
                    self.add_error(name, "needed: the study has no analysis to use as the pilot")
        return data

    def components(self) -> VarianceComponents:
        if self.pilot.result is not None:
            return self.pilot.result.components
        return assumed_components(**{k: self.cleaned_data[k] for k in COMPONENT_FIELDS})

    def plan(self) -> PowerPlan | None:
        """The power plan of valid input; None (with the reason as a form error) when the
        computation refuses it."""
        data = self.cleaned_data
        choice = data["analysis"]
        try:
            return plan(
                self.components(),
                data["aucs"],
                readers=data["readers"],
                cases=data["cases"],
                target=data.get("target_power"),
                alpha=data["alpha"],
                analyses=POWER_ANALYSES if choice == "all" else (choice,),
            )
        except ValueError as exc:
            self.add_error(None, str(exc))
            return None
