"""The trial page's JSON endpoints (mounted under /api/v1/reading/): read the trial's payload,
store an answer, reveal the AI output. Session authentication with CSRF, like the page itself.

The views are thin: `studies.reader_selectors` decides what the reader may see, and
`studies.services.reading` holds the trial's state machine. Every answer is the trial's
`trial_payload` at its new state, so the page never learns more than that selector returns.
A trial of another reader is a 404, as if it did not exist.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ParseError
from rest_framework.parsers import JSONParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import ServiceError
from studies import reader_selectors
from studies.models import Response as Answer
from studies.selectors.reading import CLOSED, CONSENT, reader_refusal
from studies.serializers import DetailSerializer, ProblemsSerializer, StrictSerializer
from studies.services.reading import AnswerError, trial_answer, trial_reveal

TRIAL_NOT_FOUND = "no such trial"
BLOCKED = {  # what the trial page is told when it cannot read now (reader_refusal's reasons)
    CLOSED: "this study is closed; it takes no more reads",
    CONSENT: "give your consent to the study before reading",
}


# Shapes (documentation of what `trial_payload` returns, and the answer's input) --------------


class ReadingPresetSerializer(serializers.Serializer):
    name = serializers.CharField()
    center = serializers.FloatField()
    width = serializers.FloatField()


class ReadingImageSerializer(serializers.Serializer):
    rows = serializers.IntegerField(allow_null=True)
    columns = serializers.IntegerField(allow_null=True)
    modality = serializers.CharField(allow_blank=True)
    monochrome1 = serializers.BooleanField()
    is_color = serializers.BooleanField()
    value_min = serializers.FloatField(allow_null=True)
    value_max = serializers.FloatField(allow_null=True)
    presets = ReadingPresetSerializer(many=True)
    pixels_url = serializers.CharField(
        help_text="full-precision values: XRS pixels (compressed 16-bit with rescale) or a float32 .npy"
    )
    display_url = serializers.CharField(help_text="8-bit rendering (PNG)")


class ReadingQuestionSerializer(serializers.Serializer):
    key = serializers.CharField()
    kind = serializers.CharField(help_text="diagnosis, confidence, likert or free_text")
    text = serializers.CharField()
    help_text = serializers.CharField(allow_blank=True)
    options = serializers.ListField(child=serializers.CharField(), help_text="diagnosis choices")
    scale = serializers.CharField(
        allow_blank=True, help_text="confidence: slider100, scale5 or scale7"
    )
    points = serializers.IntegerField(allow_null=True, help_text="Likert: 5 or 7")
    anchors = serializers.ListField(child=serializers.CharField(), help_text="Likert: [low, high]")
    required = serializers.BooleanField()


class ReadingAiSerializer(serializers.Serializer):
    label = serializers.CharField(help_text="the class the model predicts")
    positive_class = serializers.CharField()
    positive_probability = serializers.FloatField()


class ReadingSimilarCaseSerializer(serializers.Serializer):
    url = serializers.CharField()
    label = serializers.CharField()


class ReadingOverlaySerializer(serializers.Serializer):
    url = serializers.CharField(allow_null=True, help_text="the overlay image; null when empty")
    empty = serializers.BooleanField(
        help_text="the explanation highlights no region: show 'No region highlighted', no overlay"
    )


class ReadingFeedbackSerializer(serializers.Serializer):
    truth = serializers.CharField(allow_null=True)


class ReadingTrialSerializer(serializers.Serializer):
    trial = serializers.UUIDField()
    state = serializers.CharField(help_text="pending, shown, first_answered, revealed or done")
    stage = serializers.CharField(
        allow_null=True,
        help_text="what the page asks for now: 'first' (unaided answer), 'reveal' (call reveal), "
        "'final' (final answer) or null (done)",
    )
    two_stage = serializers.BooleanField()
    training = serializers.BooleanField()
    session = serializers.IntegerField(help_text="1-based")
    sessions = serializers.IntegerField()
    position = serializers.IntegerField(help_text="1-based, within the session")
    trials_in_session = serializers.IntegerField()
    image = ReadingImageSerializer()
    questions = ReadingQuestionSerializer(many=True, help_text="the questions of `stage`")
    first_answer = serializers.DictField(
        child=serializers.JSONField(allow_null=True),
        allow_null=True,
        help_text="two-stage final stage: your own unaided answer (question key -> answer), read-only",
    )
    ai = ReadingAiSerializer(allow_null=True, help_text="the AI output, once it may be shown")
    overlay = ReadingOverlaySerializer(
        allow_null=True,
        help_text="the heatmap, once it may be shown (null: none); the same shape for every explainer",
    )
    overlay_url = serializers.CharField(
        allow_null=True, help_text="the same as overlay.url (kept for older clients)"
    )
    similar_cases = ReadingSimilarCaseSerializer(many=True)
    feedback = ReadingFeedbackSerializer(
        allow_null=True, help_text="training trials, once answered"
    )
    clinical_history = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="the case's clinical history; present only where the study shows it",
    )


class ReadingAnswerSerializer(StrictSerializer):
    """One submit of the trial page: a stage's answers, its idempotency key and the viewer's
    interaction summary. Unknown fields are refused."""

    stage = serializers.CharField(
        help_text="'first' (unaided answer of a two-stage trial) or 'final'"
    )
    answers = serializers.DictField(
        child=serializers.JSONField(allow_null=True), help_text="question key -> answer"
    )
    client_key = serializers.UUIDField(
        help_text="a fresh UUID per submit, reused when that submit is retried; a replay returns the stored answer"
    )
    interactions = serializers.DictField(
        child=serializers.JSONField(allow_null=True),
        required=False,
        default=dict,
        help_text="the image viewer's interaction summary (unknown keys are dropped)",
    )

    def validate_stage(self, value: str) -> str:
        if value not in Answer.Stage.values:
            raise serializers.ValidationError(f"must be one of: {', '.join(Answer.Stage.values)}")
        return value


class ReadingAnswerResultSerializer(serializers.Serializer):
    payload = ReadingTrialSerializer()


class ReadingAnswerProblemsSerializer(ProblemsSerializer):
    fields = serializers.DictField(  # type: ignore[assignment]
        child=serializers.CharField(),
        required=False,
        help_text="question key -> what is wrong with the answer",
    )


_NOT_FOUND = {
    404: OpenApiResponse(DetailSerializer, description="no such trial (or another reader's)")
}
_REFUSED = OpenApiResponse(
    ProblemsSerializer,
    description="refused: study closed, no consent, out of order, or already answered",
)


# Views --------------------------------------------------------------------------------------


def _trial(request, trial_uid):
    return reader_selectors.reader_trial_get(user=request.user, trial_uid=trial_uid)


def _request_problems(errors: dict) -> list[str]:
    problems = []
    for name, value in errors.items():
        if isinstance(value, dict):
            value = [f"{key}: {' '.join(map(str, inner))}" for key, inner in value.items()]
        problems.append(f"{name}: {' '.join(map(str, value))}")
    return problems


def _answer_problems(exc: AnswerError) -> Response:
    """A refused answer: the problems every refusal lists (core.api), and `fields` per question."""
    return Response(
        {"detail": "; ".join(exc.problems), "problems": exc.problems, "fields": exc.fields},
        status=status.HTTP_400_BAD_REQUEST,
    )


class ReadingApi(APIView):
    parser_classes = [JSONParser]
    permission_classes = [IsAuthenticated]


class ReadingTrialApi(ReadingApi):
    @extend_schema(
        summary="What the trial page may show now (your own trial only)",
        responses={200: ReadingTrialSerializer, 400: _REFUSED, **_NOT_FOUND},
    )
    def get(self, request, trial_uid):
        trial = _trial(request, trial_uid)
        refusal = reader_refusal(user=request.user, enrollment=trial.session.enrollment)
        if refusal:
            raise ServiceError(BLOCKED[refusal.reason])
        return Response(reader_selectors.trial_payload(trial=trial))


class ReadingAnswerApi(ReadingApi):
    @extend_schema(
        summary="Store your answer to a stage of the trial, exactly once per client key",
        description=(
            "Two-stage trials: answer stage 'first' (unaided), then call reveal, then answer 'final'. "
            "A retry with the same client_key returns 200 and stores nothing new. Invalid answers: 400 "
            "with `fields` (question key -> problem); nothing is stored."
        ),
        request=ReadingAnswerSerializer,
        responses={
            200: ReadingAnswerResultSerializer,
            400: OpenApiResponse(
                ReadingAnswerProblemsSerializer,
                description="a malformed request, invalid answers (with `fields`), or refused",
            ),
            **_NOT_FOUND,
        },
    )
    def post(self, request, trial_uid):
        trial = _trial(request, trial_uid)
        try:
            body = request.data
        except ParseError as exc:  # a body that is not JSON: refused like any other answer
            raise ServiceError(f"the request body is not valid JSON: {exc.detail}") from None
        data = ReadingAnswerSerializer(data=body)
        if not data.is_valid():  # the same shape as every other refusal, for the page
            raise ServiceError(_request_problems(data.errors))
        try:
            trial_answer(acting_user=request.user, trial=trial, **data.validated_data)
        except AnswerError as exc:
            return _answer_problems(exc)
        except PermissionError:
            raise NotFound(TRIAL_NOT_FOUND) from None
        trial = _trial(request, trial_uid)
        return Response({"payload": reader_selectors.trial_payload(trial=trial)})


class ReadingRevealApi(ReadingApi):
    @extend_schema(
        summary="Two-stage trials: show the AI output once the unaided answer is stored",
        request=None,
        responses={200: ReadingTrialSerializer, 400: _REFUSED, **_NOT_FOUND},
    )
    def post(self, request, trial_uid):
        trial = _trial(request, trial_uid)
        try:
            trial = trial_reveal(acting_user=request.user, trial=trial)
        except PermissionError:
            raise NotFound(TRIAL_NOT_FOUND) from None
        return Response(reader_selectors.trial_payload(trial=trial))
