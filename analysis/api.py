"""REST endpoints of the analysis app: request a study's report, follow it, list files."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from analysis import selectors, services
from analysis.models import StudyReport
from core.errors import ServiceError
from studies.models import Study
from studies.selectors import study_can_view


class ReportSerializer(serializers.Serializer):
    uid = serializers.UUIDField()
    status = serializers.CharField(help_text="pending, running, done or failed")
    status_label = serializers.CharField()
    progress = serializers.IntegerField(help_text="percent")
    stage = serializers.CharField()
    error = serializers.CharField()
    unblinded = serializers.BooleanField()
    fom = serializers.CharField(help_text="figure of merit of the ROC analysis")
    fom_label = serializers.CharField()
    cov_method = serializers.CharField(help_text="case-sampling covariance of the ROC analysis")
    cov_method_label = serializers.CharField()
    files = serializers.ListField(
        child=serializers.CharField(), help_text="kinds ready to download"
    )
    pdf_problem = serializers.CharField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    downloads = serializers.DictField(
        child=serializers.CharField(), help_text="kind -> URL (audited)"
    )


def _payload(request, report: StudyReport) -> dict:
    data = selectors.report_progress(report=report)
    data["downloads"] = {
        kind: request.build_absolute_uri(
            reverse("analysis:report-file", kwargs={"report_uid": report.uid, "kind": kind})
        )
        for kind in data["files"]
    }
    return data


class ReportListApi(APIView):
    permission_classes = [IsAuthenticated]

    def _study(self, request, study_id: int) -> Study:
        study = Study.objects.filter(pk=study_id).first()
        if study is None or not study_can_view(study=study, user=request.user):
            raise NotFound("no such study")
        return study

    @extend_schema(
        summary="The study's reports (unblinded ones only for its statistician)",
        responses=ReportSerializer(many=True),
    )
    def get(self, request, study_id: int):
        study = self._study(request, study_id)
        return Response(
            [_payload(request, r) for r in selectors.report_list(study=study, user=request.user)]
        )

    @extend_schema(
        summary="Request a report of the responses so far (built by a worker; poll its progress)",
        request=inline_serializer(
            "ReportRequest",
            {
                "unblinded": serializers.BooleanField(default=False),
                "fom": serializers.ChoiceField(
                    choices=StudyReport.Fom.choices,
                    default="auc",
                    help_text="figure of merit of the ROC analysis",
                ),
                "cov_method": serializers.ChoiceField(
                    choices=StudyReport.COV_CHOICES,
                    default="jackknife",
                    help_text="case-sampling covariance of the ROC analysis (DeLong and "
                    "unbiased only with the empirical AUC)",
                ),
            },
        ),
        responses={
            202: ReportSerializer,
            400: OpenApiResponse(description="problems"),
            403: OpenApiResponse(description="unblinded: statistician only"),
            404: None,
        },
    )
    def post(self, request, study_id: int):
        study = self._study(request, study_id)
        if not isinstance(request.data, dict):  # a JSON list, string or number
            raise ServiceError('the request body must be an object such as {"unblinded": false}')
        unblinded = request.data.get("unblinded", False)
        options = {
            name: request.data.get(name, default)
            for name, default in (("fom", "auc"), ("cov_method", "jackknife"))
        }
        problems = [] if isinstance(unblinded, bool) else ["unblinded must be true or false"]
        problems += [
            f"{name} must be a string" for name, v in options.items() if not isinstance(v, str)
        ]
        if problems:
            raise ServiceError(problems)
        try:
            report = services.report_request(
                acting_user=request.user, study=study, unblinded=unblinded, **options
            )
        except PermissionError as exc:
            return Response({"detail": str(exc)}, status=403)
        report.refresh_from_db()
        return Response(_payload(request, report), status=202)


class ReportDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="A report's status, progress and download links", responses=ReportSerializer
    )
    def get(self, request, report_uid):
        report = get_object_or_404(StudyReport.objects.select_related("study"), uid=report_uid)
        visible = (
            study_can_view(study=report.study, user=request.user)
            and selectors.report_list(study=report.study, user=request.user)
            .filter(pk=report.pk)
            .exists()
        )
        if not visible:
            raise NotFound("no such report")
        return Response(_payload(request, report))
