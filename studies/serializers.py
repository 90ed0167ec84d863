"""Input and output shapes of the studies API.

Blinding: nothing here renders an arm's explainer, parameters or seed. An arm is its code, a
kind and the condition text from `selectors.arm_condition` (which names the explainer only
while the study is a draft). Once the configuration is frozen, the explanation arms (real and
placebo) share the kind `explanation`, so the output cannot tell the placebo apart either.
Only the statistician's audited reveal (`RevealedArmSerializer`) shows what each arm is.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from explain.models import ClassifierModel
from library.models import Collection
from studies import selectors
from studies.models import Arm, Question, Study, StudyCase
from studies.selectors import BLINDED_KIND, arm_blinded_kind

# Output-only kinds are documented as text, not enums, so that the schema has one `ArmKindEnum`
# (the request's) and one `QuestionKindEnum` without ENUM_NAME_OVERRIDES.
BLINDED_KIND_HELP = (
    f"{', '.join(Arm.Kind.values)} while the study is a draft; once it opened, '{BLINDED_KIND}'"
    " stands for both explanation kinds (real and placebo)"
)
# Bounds of the database columns, so that an absurd number is a 400 and not a database error.
SMALL_INT_MAX = 32767
ID_MAX = 2**63 - 1
READERS_SEE_ONLY = "Readers never see it: they see only reader_title and reader_description."
WARNINGS_HELP = (
    "what the coordinator should know before opening, without stopping it from opening: reader-facing"
    " texts that could unblind, no reader-facing title, empty explanations, no case the AI gets wrong"
    " (drafts only; empty once the study opened)"
)


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know instead of ignoring them (a typo is a 400, not a no-op)."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(
                set(data) - {name for name, f in self.fields.items() if not f.read_only}
            )
            if unknown:
                raise serializers.ValidationError({name: ["unknown field"] for name in unknown})
        return super().to_internal_value(data)


class ProblemsSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="every problem, joined with '; '")
    problems = serializers.ListField(child=serializers.CharField(), help_text="one sentence each")


class DetailSerializer(serializers.Serializer):
    detail = serializers.CharField()


# Studies ------------------------------------------------------------------------------------


class _StudyFieldsSerializer(StrictSerializer):
    """The configurable study fields, all optional (create and PATCH)."""

    title = serializers.CharField(
        max_length=200,
        required=False,
        allow_blank=True,
        help_text=f"internal (protocol) title. {READERS_SEE_ONLY}",
    )
    description = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text=f"internal protocol description. {READERS_SEE_ONLY}",
    )
    reader_title = serializers.CharField(
        max_length=200,
        required=False,
        allow_blank=True,
        help_text="what readers are told the study is called (blank: a neutral 'Reader study'); readers see"
        " only this title and reader_description",
    )
    reader_description = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="what readers are told about the study; readers see only this and reader_title",
    )
    instructions = serializers.CharField(required=False, allow_blank=True)
    consent_text = serializers.CharField(required=False, allow_blank=True)
    model = serializers.PrimaryKeyRelatedField(
        queryset=ClassifierModel.objects.all(),
        required=False,
        allow_null=True,
        help_text="id of the registered model whose outputs the study shows",
    )
    collections = serializers.PrimaryKeyRelatedField(
        queryset=Collection.objects.all(),
        many=True,
        required=False,
        help_text="ids of the case collections the study draws its cases from",
    )
    design = serializers.ChoiceField(choices=Study.Design.choices, required=False)
    protocol = serializers.ChoiceField(choices=Study.Protocol.choices, required=False)
    sessions = serializers.IntegerField(required=False, max_value=SMALL_INT_MAX)
    washout_days = serializers.IntegerField(required=False, max_value=SMALL_INT_MAX)
    min_ai_wrong_share = serializers.FloatField(
        required=False,
        allow_null=True,
        help_text="minimum share (0-1) of main cases the AI gets wrong; null: no minimum",
    )


class StudyCreateSerializer(_StudyFieldsSerializer):
    title = serializers.CharField(
        max_length=200, help_text=f"internal (protocol) title. {READERS_SEE_ONLY}"
    )


class StudyUpdateSerializer(_StudyFieldsSerializer):
    pass


class ArmSerializer(serializers.Serializer):
    """An arm as coordinators see it (never its explainer once the study opened)."""

    code = serializers.CharField()
    kind = serializers.CharField(help_text=BLINDED_KIND_HELP)
    condition = serializers.CharField(
        help_text="what the arm shows; names the explainer only while the study is a draft"
    )
    shows_ai = serializers.BooleanField()
    shows_explanation = serializers.BooleanField()
    shows_clinical_history = serializers.BooleanField(
        help_text="readers in this arm see each case's clinical history"
    )

    def to_representation(self, arm: Arm) -> dict:
        study = self.context["study"]
        return {
            "code": arm.code,
            "kind": arm_blinded_kind(kind=arm.kind, study=study),
            "condition": selectors.arm_condition(arm=arm, study=study),
            "shows_ai": arm.shows_ai,
            "shows_explanation": arm.shows_explanation,
            "shows_clinical_history": arm.shows_clinical_history,
        }


@extend_schema_serializer(component_name="Arm")
class ArmAddSerializer(StrictSerializer):
    kind = serializers.ChoiceField(choices=Arm.Kind.choices)
    explainer = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        help_text="explainer name for 'ai_explainer' and 'placebo' arms",
    )
    params = serializers.DictField(required=False, allow_null=True, default=None)
    seed = serializers.IntegerField(required=False, default=0, max_value=2**31 - 1)
    shows_clinical_history = serializers.BooleanField(
        required=False,
        default=False,
        help_text="readers in this arm see each case's clinical history (a factor of the design)",
    )


class ArmUpdateSerializer(StrictSerializer):
    shows_clinical_history = serializers.BooleanField(
        help_text="readers in this arm see each case's clinical history (a factor of the design)"
    )


class RevealedArmSerializer(serializers.Serializer):
    code = serializers.CharField()
    kind = serializers.CharField(help_text=", ".join(Arm.Kind.values))
    kind_label = serializers.CharField()
    explainer = serializers.CharField()
    params = serializers.DictField()
    seed = serializers.IntegerField()
    param_hash = serializers.CharField()


class QuestionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Question
        fields = list(Question.CONFIGURED_FIELDS)
        read_only_fields = fields


@extend_schema_serializer(component_name="Question")
class QuestionAddSerializer(StrictSerializer):
    key = serializers.CharField(max_length=40, help_text="column name in exports")
    kind = serializers.ChoiceField(choices=Question.Kind.choices)
    text = serializers.CharField(max_length=300)
    help_text = serializers.CharField(max_length=300, required=False, allow_blank=True)
    options = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="diagnosis choices (default: the study model's class labels); ordinal: the 2-10"
        " category labels in order, lowest first; advice: fixed (accept, modify, reject)",
    )
    scale = serializers.ChoiceField(
        choices=["slider100", "scale5", "scale7"],
        required=False,
        allow_blank=True,
        help_text="confidence questions only",
    )
    points = serializers.IntegerField(required=False, allow_null=True, help_text="Likert: 5 or 7")
    anchors = serializers.ListField(
        child=serializers.CharField(allow_blank=True),
        required=False,
        help_text="Likert: [lowest, highest] wording",
    )
    applies_to = serializers.ChoiceField(
        choices=Question.AppliesTo.choices,
        required=False,
        help_text="default: all (advice: ai; an advice question cannot apply to every arm)",
    )
    stage = serializers.ChoiceField(
        choices=Question.Stage.choices,
        required=False,
        help_text="default: every for diagnosis, confidence, probability and ordinal; final"
        " otherwise (advice: final only)",
    )
    required = serializers.BooleanField(required=False)


@extend_schema_serializer(component_name="Question")
class QuestionUpdateSerializer(QuestionAddSerializer):
    key = serializers.CharField(max_length=40, required=False)
    kind = serializers.ChoiceField(choices=Question.Kind.choices, required=False)
    text = serializers.CharField(max_length=300, required=False)
    order = serializers.IntegerField(min_value=0, max_value=SMALL_INT_MAX, required=False)


class CaseCountsSerializer(serializers.Serializer):
    main = serializers.IntegerField()
    training = serializers.IntegerField()
    attention = serializers.IntegerField()


def _case_ids(**kwargs) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=ID_MAX),
        help_text="case ids",
        **kwargs,
    )


class CaseIdsSerializer(StrictSerializer):
    main = _case_ids()
    training = _case_ids(required=False, default=list)
    attention = _case_ids(required=False, default=list)


class CasesAddSerializer(StrictSerializer):
    role = serializers.CharField(  # text, not an enum: the schema already has a RoleEnum (people)
        required=False, default=StudyCase.Role.MAIN, help_text=", ".join(StudyCase.Role.values)
    )
    case_ids = _case_ids(required=False, default=list)
    keys = serializers.ListField(
        child=serializers.CharField(max_length=255),
        required=False,
        default=list,
        help_text="case keys within the study's collections",
    )


class CasesExcludeSerializer(StrictSerializer):
    case_ids = _case_ids()


class QuestionMoveSerializer(StrictSerializer):
    direction = serializers.ChoiceField(choices=["up", "down"])


class CaseSelectSerializer(StrictSerializer):
    split = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="only cases of this split"
    )
    main_count = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        help_text="main cases to choose (default: every case left after the others)",
    )
    training_count = serializers.IntegerField(required=False, default=0)
    attention_count = serializers.IntegerField(required=False, default=0)


class StudyListSerializer(serializers.ModelSerializer):
    model_name = serializers.CharField(
        source="model.name", default=None, allow_null=True, read_only=True
    )
    collections = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = Study
        fields = [
            "id",
            "uid",
            "title",
            "status",
            "design",
            "protocol",
            "model",
            "model_name",
            "collections",
            "created_at",
            "opened_at",
            "closed_at",
        ]
        read_only_fields = fields


class StudyDetailSerializer(StudyListSerializer):
    arms = serializers.SerializerMethodField()
    questions = QuestionSerializer(many=True, read_only=True)
    case_counts = serializers.SerializerMethodField()
    problems = serializers.SerializerMethodField()
    warnings = serializers.SerializerMethodField(help_text=WARNINGS_HELP)
    can_manage = serializers.SerializerMethodField()

    class Meta(StudyListSerializer.Meta):
        fields = [
            *StudyListSerializer.Meta.fields,
            "description",
            "reader_title",
            "reader_description",
            "instructions",
            "consent_text",
            "consent_version",
            "sessions",
            "washout_days",
            "min_ai_wrong_share",
            "seed",
            "arms",
            "questions",
            "case_counts",
            "problems",
            "warnings",
            "can_manage",
        ]
        read_only_fields = fields

    @extend_schema_field(ArmSerializer(many=True))
    def get_arms(self, study: Study) -> list[dict]:
        return ArmSerializer(study.arms.order_by("code"), many=True, context={"study": study}).data

    @extend_schema_field(CaseCountsSerializer)
    def get_case_counts(self, study: Study) -> dict[str, int]:
        return {role: len(ids) for role, ids in selectors.study_case_ids(study=study).items()}

    def get_problems(self, study: Study) -> list[str]:
        """What stops a draft from opening (empty once it opened)."""
        if study.status != Study.Status.DRAFT:
            return []
        return selectors.study_problems(study=study)

    def get_warnings(self, study: Study) -> list[str]:
        if study.status != Study.Status.DRAFT:
            return []
        return selectors.study_warnings(study=study)

    def get_can_manage(self, study: Study) -> bool:
        request = self.context.get("request")
        return bool(request) and selectors.study_can_manage(study=study, user=request.user)


# Readiness, progress, readers ---------------------------------------------------------------


class ArmReadinessSerializer(serializers.Serializer):
    code = serializers.CharField()
    kind = serializers.CharField(help_text=BLINDED_KIND_HELP)
    cases = serializers.IntegerField()
    ready = serializers.BooleanField()
    missing = serializers.DictField(
        child=serializers.IntegerField(), help_text="output ('prediction', 'explanation') -> cases"
    )
    present = serializers.DictField(child=serializers.IntegerField())


class ArmAiWrongSerializer(serializers.Serializer):
    code = serializers.CharField()
    shows_ai = serializers.BooleanField()
    trials = serializers.IntegerField()
    ai_wrong_trials = serializers.IntegerField()


class AiWrongSerializer(serializers.Serializer):
    main_cases = serializers.IntegerField()
    cases_with_known_correctness = serializers.IntegerField()
    ai_wrong_cases = serializers.IntegerField()
    ai_wrong_share = serializers.FloatField(allow_null=True)
    min_ai_wrong_share = serializers.FloatField(allow_null=True)
    per_arm = ArmAiWrongSerializer(many=True)


class EmptyExplanationSerializer(serializers.Serializer):
    case_id = serializers.IntegerField()
    case_key = serializers.CharField()
    role = serializers.CharField()
    arms = serializers.ListField(
        child=serializers.CharField(),
        help_text="codes of the arms whose map is empty; only while the study is a draft (empty afterwards)",
    )


class ReadinessSerializer(serializers.Serializer):
    problems = serializers.ListField(child=serializers.CharField())
    warnings = serializers.ListField(child=serializers.CharField(), help_text=WARNINGS_HELP)
    empty_explanations = EmptyExplanationSerializer(
        many=True,
        help_text="cases whose explanation highlights no region (readers see 'No region highlighted')",
    )
    arms = ArmReadinessSerializer(many=True)
    ai_wrong = AiWrongSerializer()
