"""REST endpoint of a study's end-of-session questionnaires (mounted under /api/v1/): read the
configuration and replace it while the study is a draft (see `studies.api` for the access rules
and `studies.services.questionnaires` for the shape)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from studies import services
from studies.api import READ_ERRORS, WRITE_ERRORS, StudyApi, study_for_request, valid_payload
from studies.questionnaire_scoring import INSTRUMENTS

_ENTRY_HELP = (
    'a list of {"instrument": "nasa_tlx" | "sus" | "jian_trust", "after": "each_session" |'
    ' "last_session", "pairwise": bool (nasa_tlx only)}, in the order readers answer them'
)


class QuestionnairesSerializer(serializers.Serializer):
    questionnaires = serializers.ListField(child=serializers.JSONField(), help_text=_ENTRY_HELP)


QuestionnairesAnswer = inline_serializer(
    "StudyQuestionnaires",
    {
        "questionnaires": serializers.ListField(child=serializers.JSONField()),
        "instruments": serializers.ListField(child=serializers.JSONField()),
    },
)


def _answer(study) -> Response:
    return Response(
        {
            "questionnaires": list(study.questionnaires or []),
            "instruments": [
                {"key": key, "name": instrument.name, "items": len(instrument.items)}
                for key, instrument in INSTRUMENTS.items()
            ],
        }
    )


class StudyQuestionnairesApi(StudyApi):
    @extend_schema(
        summary="The study's end-of-session questionnaires and the instruments available",
        responses={200: QuestionnairesAnswer, **READ_ERRORS},
    )
    def get(self, request, study_id: int):
        return _answer(study_for_request(request, study_id))

    @extend_schema(
        summary="Replace a draft's end-of-session questionnaires (an empty list: none)",
        request=QuestionnairesSerializer,
        responses={200: QuestionnairesAnswer, **WRITE_ERRORS},
    )
    def put(self, request, study_id: int):
        study = study_for_request(request, study_id, manage=True)
        payload = valid_payload(QuestionnairesSerializer, request)
        study = services.study_questionnaires_set(
            acting_user=request.user, study=study, questionnaires=payload["questionnaires"]
        )
        return _answer(study)
