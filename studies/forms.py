"""Forms of the coordinator workspace and the invitation page. They only parse input; every
rule about what a study may look like lives in `studies.services`."""

from __future__ import annotations

from django import forms

from core.errors import ServiceError
from explain.models import ClassifierModel
from library.models import Collection
from studies import services
from studies.models import Arm, Question, Study, StudyCase, StudyRole

YES_NO = [("", "prefer not to say"), ("yes", "yes"), ("no", "no")]


def _lines(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


READERS_SEE_ONLY = "Readers see only the reader-facing title and description, never this."


class StudyCreateForm(forms.Form):
    title = forms.CharField(
        max_length=200, label="Internal title", help_text=f"the protocol's title. {READERS_SEE_ONLY}"
    )
    description = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), required=False, label="Internal description",
        help_text=f"the protocol, for the study team. {READERS_SEE_ONLY}",
    )
    reader_title = forms.CharField(
        max_length=200, required=False, label="Reader-facing title",
        help_text="what readers are told the study is called (empty: a neutral 'Reader study'). Readers see"
        " only this title and the reader-facing description; do not name an explainer, an arm kind or"
        " a placebo here.",
    )
    reader_description = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), required=False, label="Reader-facing description",
        help_text="what readers are told about the study, on the consent page and their home page. Readers"
        " see only this and the reader-facing title.",
    )
    model = forms.ModelChoiceField(
        queryset=ClassifierModel.objects.none(), required=False,
        help_text="the classifier whose predictions and explanations readers see",
    )
    collections = forms.ModelMultipleChoiceField(
        queryset=Collection.objects.none(), required=False,
        widget=forms.SelectMultiple(attrs={"size": 5}), help_text="where the study's cases come from",
    )
    design = forms.ChoiceField(choices=Study.Design.choices, initial=Study.Design.LATIN_SQUARE)
    protocol = forms.ChoiceField(choices=Study.Protocol.choices, initial=Study.Protocol.SINGLE_STAGE)
    sessions = forms.IntegerField(min_value=1, max_value=20, initial=1)
    washout_days = forms.IntegerField(
        min_value=0, max_value=365, initial=0, help_text="days between reading periods"
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["model"].queryset = ClassifierModel.objects.order_by("name")
        self.fields["collections"].queryset = Collection.objects.order_by("name")

    def service_values(self) -> dict:
        data = dict(self.cleaned_data)
        data["collections"] = list(data["collections"])
        return data


class StudyEditForm(StudyCreateForm):
    instructions = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}), required=False,
        help_text="shown to readers before their first session",
    )
    consent_text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}), required=False,
        help_text="readers agree to this before reading; changing it raises the consent version",
    )
    min_ai_wrong_share = forms.FloatField(
        required=False, min_value=0, max_value=0.99, label="Minimum AI-wrong share",
        help_text="minimum share of main cases the AI gets wrong, 0-1 (empty: no minimum)",
    )

    field_order = [
        "title", "description", "reader_title", "reader_description", "instructions", "consent_text",
        "model", "collections",
        "design", "protocol", "sessions", "washout_days", "min_ai_wrong_share",
    ]

    @classmethod
    def for_study(cls, study: Study, data=None) -> StudyEditForm:
        initial = {
            field: getattr(study, field)
            for field in ("title", "description", "reader_title", "reader_description", "instructions",
                          "consent_text", "design",
                          "protocol", "sessions", "washout_days", "min_ai_wrong_share")
        }
        initial["model"] = study.model_id
        initial["collections"] = list(study.collections.values_list("pk", flat=True))
        return cls(data, initial=initial)


class ArmClinicalHistoryForm(forms.Form):
    shows_clinical_history = forms.BooleanField(required=False)


class ConfirmForm(forms.Form):
    confirm = forms.BooleanField(required=True)


class ArmForm(forms.Form):
    kind = forms.ChoiceField(choices=Arm.Kind.choices)
    explainer = forms.ChoiceField(
        required=False, help_text="only for arms that show an explanation (or a placebo of one)"
    )
    shows_clinical_history = forms.BooleanField(
        required=False,
        label="Show clinical history",
        help_text="readers in this arm see each case's clinical history beside the image",
    )

    def __init__(self, *args, study: Study, **kwargs):
        super().__init__(*args, **kwargs)
        supported = study.model.supported_explainers if study.model_id else []
        self.fields["explainer"].choices = [("", "— none —")] + [(name, name) for name in supported]


# Which question kinds each kind-specific field belongs to (the rest belong to every kind).
QUESTION_KIND_FIELDS = {
    "options": (Question.Kind.DIAGNOSIS, Question.Kind.ORDINAL),
    "scale": (Question.Kind.CONFIDENCE,),
    "points": (Question.Kind.LIKERT,),
    "anchor_low": (Question.Kind.LIKERT,),
    "anchor_high": (Question.Kind.LIKERT,),
}


class QuestionForm(forms.Form):
    """A question's fields. Fields that do not belong to the chosen kind are ignored (and not
    shown again after an error); `static/js/question-form.js` hides them as the kind changes."""

    kind = forms.ChoiceField(choices=Question.Kind.choices, widget=forms.Select(attrs={"data-question-kind": ""}))
    key = forms.CharField(max_length=40, help_text="column name in exports, e.g. diagnosis")
    text = forms.CharField(max_length=300)
    help_text = forms.CharField(max_length=300, required=False, label="Help text")
    options = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), required=False,
        help_text="one choice per line (diagnosis, empty: the model's class labels; ordered"
        " categories: 2 to 10 labels, lowest first)",
    )
    scale = forms.ChoiceField(
        required=False,
        choices=[("", "slider 0-100 (default)"), ("slider100", "slider 0-100"), ("scale5", "5-point scale"),
                 ("scale7", "7-point scale")],
    )
    points = forms.TypedChoiceField(
        required=False, coerce=int, empty_value=None,
        choices=[("", "5 (default)"), ("5", "5"), ("7", "7")], label="Likert points",
    )
    anchor_low = forms.CharField(max_length=100, required=False, help_text="lowest point's wording")
    anchor_high = forms.CharField(max_length=100, required=False, help_text="highest point's wording")
    applies_to = forms.ChoiceField(choices=Question.AppliesTo.choices, initial=Question.AppliesTo.ALL)
    stage = forms.ChoiceField(
        required=False,
        choices=[("", "default for the kind")] + list(Question.Stage.choices),
    )
    required = forms.BooleanField(required=False, initial=True)

    def __init__(self, data=None, *args, **kwargs):
        if data is not None:
            data = data.copy()
            kind = data.get("kind")
            for name, kinds in QUESTION_KIND_FIELDS.items():
                if kind not in kinds and name in data:
                    data[name] = ""
        super().__init__(data, *args, **kwargs)
        for name, kinds in QUESTION_KIND_FIELDS.items():
            self.fields[name].widget.attrs["data-question-kinds"] = " ".join(kinds)

    @classmethod
    def for_question(cls, question: Question, data=None) -> QuestionForm:
        anchors = list(question.anchors) + ["", ""]
        initial = {
            "kind": question.kind, "key": question.key, "text": question.text, "help_text": question.help_text,
            "options": "\n".join(map(str, question.options)), "scale": question.scale,
            "points": question.points or "", "anchor_low": anchors[0], "anchor_high": anchors[1],
            "applies_to": question.applies_to, "stage": question.stage, "required": question.required,
        }
        return cls(data, initial=initial)

    def service_values(self) -> dict:
        data = self.cleaned_data
        kind = data["kind"]
        anchors = [data["anchor_low"], data["anchor_high"]]
        return {
            "kind": kind,
            "key": data["key"].strip(),
            "text": data["text"],
            "help_text": data["help_text"],
            "options": _lines(data["options"]) if kind in QUESTION_KIND_FIELDS["options"] else [],
            "scale": data["scale"] if kind == Question.Kind.CONFIDENCE else "",
            "points": data["points"] if kind == Question.Kind.LIKERT else None,
            "anchors": anchors if kind == Question.Kind.LIKERT and any(a.strip() for a in anchors) else [],
            "applies_to": data["applies_to"],
            "stage": data["stage"],
            "required": data["required"],
        }


class QuestionMoveForm(forms.Form):
    direction = forms.ChoiceField(choices=[("up", "up"), ("down", "down")])


def _split_label(split: str) -> str:
    return split or "(no split)"


class CaseSelectForm(forms.Form):
    """The seeded selection: from one split of the study's collections (listed with their case
    counts) or from all of them."""

    split = forms.ChoiceField(required=False, help_text="only cases of this split")
    main_count = forms.IntegerField(
        min_value=1, required=False, help_text="empty: every remaining case"
    )
    training_count = forms.IntegerField(min_value=0, initial=0)
    attention_count = forms.IntegerField(min_value=0, initial=0, label="Attention-check count")

    def __init__(self, *args, splits: list[dict], **kwargs):
        super().__init__(*args, **kwargs)
        total = sum(row["cases"] for row in splits)
        self.fields["split"].choices = [("", f"every split ({total} cases)")] + [
            (row["split"], f"{_split_label(row['split'])} ({row['cases']} cases)")
            for row in splits if row["split"]
        ]


class CaseIdsField(forms.MultipleChoiceField):
    """Case ids (ticked checkboxes): whole numbers; which cases they may be is the service's rule."""

    def to_python(self, value):
        values = super().to_python(value)
        try:
            return [int(v) for v in values]
        except (TypeError, ValueError):
            raise forms.ValidationError("case ids are whole numbers") from None

    def valid_value(self, value) -> bool:
        return True


class CasePickForm(forms.Form):
    """Cases picked by hand: ticked in the list of available cases and/or named by key."""

    role = forms.ChoiceField(choices=StudyCase.Role.choices, initial=StudyCase.Role.MAIN, label="Add as")
    case_ids = CaseIdsField(required=False)
    keys = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), required=False, label="Case keys",
        help_text="one per line (or separated by commas or spaces), e.g. demo-0001",
    )

    def service_values(self) -> dict:
        keys = [k for k in self.cleaned_data["keys"].replace(",", " ").split() if k]
        return {"role": self.cleaned_data["role"], "case_ids": self.cleaned_data["case_ids"], "keys": keys}


class CaseExcludeForm(forms.Form):
    case_ids = CaseIdsField(required=False)


class UsernameField(forms.CharField):
    """A username, cleaned to the user it names."""

    def clean(self, value):
        username = super().clean(value).strip()
        try:
            return services.user_by_username(username)
        except ServiceError as exc:
            raise forms.ValidationError(exc.problems) from None


ROLE_CHOICES = [
    (StudyRole.Role.READER, StudyRole.Role.READER.label),
    (StudyRole.Role.COORDINATOR, StudyRole.Role.COORDINATOR.label),
    (StudyRole.Role.STATISTICIAN, StudyRole.Role.STATISTICIAN.label),
]


class RoleForm(forms.Form):
    """A person and a role. Defaults to reader (the usual addition); a closed study offers only
    the statistician role."""

    user = UsernameField(max_length=150, label="Username")
    role = forms.ChoiceField(choices=ROLE_CHOICES, initial=StudyRole.Role.READER)

    def __init__(self, *args, closed: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if closed:
            self.fields["role"].choices = [(StudyRole.Role.STATISTICIAN, StudyRole.Role.STATISTICIAN.label)]
            self.fields["role"].initial = StudyRole.Role.STATISTICIAN


class InviteForm(forms.Form):
    email = forms.CharField(max_length=254, label="E-mail")
    valid_days = forms.IntegerField(required=False, min_value=1, max_value=90, label="Valid for (days)")


class InvitationAcceptForm(forms.Form):
    password = forms.CharField(widget=forms.PasswordInput, strip=False)
    password_again = forms.CharField(widget=forms.PasswordInput, strip=False, label="Password (again)")
    years_experience = forms.IntegerField(
        required=False, min_value=0, max_value=70, label="Years of experience",
        help_text="reading images of this kind",
    )
    specialty = forms.CharField(max_length=100, required=False)
    is_radiologist = forms.TypedChoiceField(
        choices=YES_NO, required=False, label="Radiologist?",
        coerce=lambda value: value == "yes", empty_value=None,
    )

    def clean(self):
        data = super().clean()
        if data.get("password") and data.get("password") != data.get("password_again"):
            self.add_error("password_again", "the two passwords differ")
        return data

    def service_values(self) -> dict:
        data = self.cleaned_data
        return {
            "password": data["password"],
            "years_experience": data["years_experience"],
            "specialty": data["specialty"] or None,
            "is_radiologist": data["is_radiologist"],
        }


class AuditFilterForm(forms.Form):
    """Filters of a study's audit trail (GET). Choices: the actions and actors in the trail."""

    action = forms.ChoiceField(required=False)
    actor = forms.ChoiceField(required=False, label="User")
    since = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, actions: list[str], actors: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["action"].choices = [("", "any action")] + [(a, a) for a in actions]
        self.fields["actor"].choices = [("", "anyone")] + [(a, a) for a in actors]

    def clean(self):
        values = super().clean()
        since, until = values.get("since"), values.get("until")
        if since and until and until < since:
            raise forms.ValidationError("the end of the date range is before its start")
        return values

    def filters(self) -> dict:
        return {key: self.cleaned_data.get(key) or ("" if key in ("action", "actor") else None)
                for key in ("action", "actor", "since", "until")}
