"""REST endpoints of the model registry and the precompute jobs (coordinators only).

A refused request's ServiceError is answered by `core.api.exception_handler` (400 with the
problems)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from core.permissions import IsCoordinator
from explain import selectors, services
from explain.serializers import (
    ModelRegisterSerializer,
    ModelSerializer,
    PrecomputeProgressSerializer,
    PrecomputeStartSerializer,
)
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
        model = services.model_register_upload(
            acting_user=request.user,
            uploaded=uploaded,
            positive_class=data.pop("positive_class", None) or None,
            **data,
        )
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
        services.precompute_cancel(acting_user=request.user, job=job)
        return Response(selectors.precompute_progress(job=job))


class ModelMetricsApi(APIView):
    permission_classes = [IsCoordinator]

    @extend_schema(responses={200: dict})
    def get(self, request, model_id: int):
        model = get_object_or_404(selectors.model_list(), pk=model_id)
        return Response(selectors.explanation_metrics_summary(model=model))
