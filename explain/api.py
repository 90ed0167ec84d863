"""REST endpoints of the case library and the model registry (coordinators only)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import service_error_response
from core.errors import ServiceError
from core.permissions import IsCoordinator
from explain import selectors, services
from explain.serializers import (
    ModelRegisterSerializer,
    ModelSerializer,
    PrecomputeProgressSerializer,
    PrecomputeStartSerializer,
)
from library import services as library_services
from library.models import Collection


class ModelListApi(APIView):
    permission_classes = [IsCoordinator]
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(responses=ModelSerializer(many=True))
    def get(self, request):
        return Response(ModelSerializer(selectors.model_list(), many=True).data)

    @extend_schema(
        request={"multipart/form-data": ModelRegisterSerializer}, responses={201: ModelSerializer}
    )
    def post(self, request):
        payload = ModelRegisterSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        uploaded = data.pop("file")
        with library_services.TemporaryFolder() as folder:
            path = library_services.uploaded_files_to_folder([uploaded], folder=folder)[0]
            try:
                model = services.model_register(
                    acting_user=request.user,
                    weights_path=path if data["form"] == "eager" else None,
                    torchscript_path=path if data["form"] == "torchscript" else None,
                    positive_class=data.pop("positive_class", None) or None,
                    **data,
                )
            except ServiceError as exc:
                return service_error_response(exc)
        return Response(ModelSerializer(model).data, status=status.HTTP_201_CREATED)


class ModelDetailApi(generics.RetrieveAPIView):
    permission_classes = [IsCoordinator]
    serializer_class = ModelSerializer
    lookup_url_kwarg = "model_id"

    def get_queryset(self):
        return selectors.model_list()


class PrecomputeListApi(APIView):
    permission_classes = [IsCoordinator]

    @extend_schema(responses=PrecomputeProgressSerializer(many=True))
    def get(self, request):
        jobs = selectors.job_list()[:100]
        return Response([selectors.precompute_progress(job=job) for job in jobs])

    @extend_schema(request=PrecomputeStartSerializer, responses={201: PrecomputeProgressSerializer})
    def post(self, request):
        payload = PrecomputeStartSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        model = get_object_or_404(selectors.model_list(), pk=data["model"])
        collection = get_object_or_404(Collection, pk=data["collection"])
        try:
            job = services.precompute_start(
                acting_user=request.user,
                model=model,
                collection=collection,
                explainers=data["explainers"],
                placebo=data["placebo"],
                split=data["split"] or None,
                force=data["force"],
                with_metrics=data["with_metrics"],
            )
        except ServiceError as exc:
            return service_error_response(exc)
        return Response(selectors.precompute_progress(job=job), status=status.HTTP_201_CREATED)


class PrecomputeDetailApi(APIView):
    permission_classes = [IsCoordinator]

    @extend_schema(responses=PrecomputeProgressSerializer)
    def get(self, request, job_id: int):
        job = get_object_or_404(selectors.job_list(), pk=job_id)
        return Response(selectors.precompute_progress(job=job))


class PrecomputeCancelApi(APIView):
    permission_classes = [IsCoordinator]

    @extend_schema(request=None, responses=PrecomputeProgressSerializer)
    def post(self, request, job_id: int):
        job = get_object_or_404(selectors.job_list(), pk=job_id)
        try:
            services.precompute_cancel(acting_user=request.user, job=job)
        except ServiceError as exc:
            return service_error_response(exc)
        return Response(selectors.precompute_progress(job=job))


class ModelMetricsApi(APIView):
    permission_classes = [IsCoordinator]

    @extend_schema(responses={200: dict})
    def get(self, request, model_id: int):
        model = get_object_or_404(selectors.model_list(), pk=model_id)
        return Response(selectors.explanation_metrics_summary(model=model))
