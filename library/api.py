"""REST endpoints of the case library (coordinators only)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import bad_request_response
from core.permissions import IsCoordinator
from library import selectors, services
from library.models import Collection
from library.serializers import (
    CaseSerializer,
    CaseUpdateSerializer,
    CollectionCreateSerializer,
    CollectionSerializer,
    ImportReportSerializer,
    ImportRequestSerializer,
)


class CollectionListApi(APIView):
    permission_classes = [IsCoordinator]

    @extend_schema(responses=CollectionSerializer(many=True))
    def get(self, request):
        return Response(CollectionSerializer(selectors.collection_list(), many=True).data)

    @extend_schema(request=CollectionCreateSerializer, responses={201: CollectionSerializer})
    def post(self, request):
        payload = CollectionCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        collection = services.collection_create(acting_user=request.user, **payload.validated_data)
        return Response(
            CollectionSerializer(selectors.collection_get(collection_id=collection.pk)).data,
            status=status.HTTP_201_CREATED,
        )


class CollectionDetailApi(APIView):
    permission_classes = [IsCoordinator]

    @extend_schema(responses=CollectionSerializer)
    def get(self, request, collection_id: int):
        collection = get_object_or_404(selectors.collection_list(), pk=collection_id)
        return Response(CollectionSerializer(collection).data)


class CaseListApi(generics.ListAPIView):
    permission_classes = [IsCoordinator]
    serializer_class = CaseSerializer

    def get_queryset(self):
        collection = get_object_or_404(Collection, pk=self.kwargs["collection_id"])
        return selectors.case_list(collection=collection)


class CaseDetailApi(generics.RetrieveAPIView):
    permission_classes = [IsCoordinator]
    serializer_class = CaseSerializer
    lookup_url_kwarg = "case_id"

    def get_queryset(self):
        return selectors.case_list_all()

    @extend_schema(
        request=CaseUpdateSerializer,
        responses={200: CaseSerializer, 400: bad_request_response("the change was refused")},
    )
    def patch(self, request, case_id: int):
        """Change a case's clinical history (audited)."""
        case = get_object_or_404(selectors.case_list_all(), pk=case_id)
        payload = CaseUpdateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        services.case_clinical_history_set(
            acting_user=request.user, case=case, **payload.validated_data
        )
        return Response(CaseSerializer(selectors.case_get(case_id=case.pk)).data)


class CaseImportApi(APIView):
    permission_classes = [IsCoordinator]
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        request={"multipart/form-data": ImportRequestSerializer},
        responses={
            201: ImportReportSerializer,
            400: bad_request_response(
                "files were rejected (the import report), or the request was refused",
                {"$ref": "#/components/schemas/ImportReport"},
            ),
        },
    )
    def post(self, request, collection_id: int):
        collection = get_object_or_404(Collection, pk=collection_id)
        payload = ImportRequestSerializer(
            data={
                "files": request.FILES.getlist("files"),
                "masks": request.FILES.getlist("masks"),
                **({"labels": request.FILES["labels"]} if "labels" in request.FILES else {}),
            }
        )
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        report = services.cases_import_uploads(
            acting_user=request.user, collection=collection, **data
        )
        body = report.to_dict()
        return Response(
            body, status=status.HTTP_201_CREATED if report.ok else status.HTTP_400_BAD_REQUEST
        )
