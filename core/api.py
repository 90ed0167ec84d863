"""DRF glue shared by every app's API."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.errors import (
    NotPermitted,
    ServiceError,
    database_unavailable_api_response,
    is_database_unavailable,
)


def exception_handler(exc, context):
    """Every API's errors, said once: a refused request (ServiceError) is 400 with one line per
    problem, an object the user may not act on (NotPermitted) is 404, a lost database is 503."""
    if isinstance(exc, ServiceError):
        return service_error_response(exc)
    if isinstance(exc, NotPermitted):
        return Response({"detail": "not found"}, status=404)
    if is_database_unavailable(exc):  # a dropped connection: 503 with a message, not a 500
        return database_unavailable_api_response(context["request"], exc)
    return drf_exception_handler(exc, context)


def service_error_response(exc) -> Response:
    """A refused request: 400 with every problem, one line each."""
    return Response({"detail": "; ".join(exc.problems), "problems": exc.problems}, status=400)


# --- The shapes of a 400 answer, for the OpenAPI schema. A refused request (ServiceError)
# answers {"detail", "problems"}; a body that cannot be parsed answers {"detail"}; invalid
# fields answer DRF's {"field": ["message", ...]} (nested objects for nested fields).
_PROBLEMS_BODY = {
    "type": "object",
    "required": ["detail", "problems"],
    "properties": {
        "detail": {"type": "string", "description": "every problem, joined with '; '"},
        "problems": {"type": "array", "items": {"type": "string"}},
    },
}
_DETAIL_BODY = {"type": "object", "required": ["detail"], "properties": {"detail": {"type": "string"}}}
_FIELD_ERRORS_BODY = {
    "type": "object",
    "description": "invalid fields, each with its messages",
    "additionalProperties": {"anyOf": [{"type": "array", "items": {}}, {"type": "object"}]},
}


def bad_request_response(description: str = "bad input", *also: dict):
    """An OpenAPI 400 response: problems, a parse error or field errors (or `also` shapes)."""
    return OpenApiResponse(
        response={"anyOf": [*also, _PROBLEMS_BODY, _DETAIL_BODY, _FIELD_ERRORS_BODY]},
        description=description,
    )
