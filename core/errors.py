"""The one error type services raise for bad input.

Views turn it into HTTP 400 with the problems listed; commands print one line
per problem and exit 1.
"""

from __future__ import annotations


class ServiceError(Exception):
    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))


class NotPermitted(Exception):
    """The acting user may not see or change this object. Interfaces answer 404 (an API) or
    a not-found page, so that the object's existence is not told."""


# The database went away in the middle of a request (a dropped connection, a restart, a
# failover): not the client's fault and not a bug, so HTTP 503 with a message, never a 500
# traceback. Every write runs in one transaction, so nothing was half written; the outcome of
# the request is unknown to the client, and the writes it retries are idempotent (an answer
# sent again with its client key is stored once).
DATABASE_UNAVAILABLE = (
    "the database could not be reached to finish this request, so it may not have been saved; "
    "try again in a moment (an answer sent again is stored only once)"
)
DATABASE_RETRY_AFTER_SECONDS = 5


def is_database_unavailable(exc: BaseException) -> bool:
    """A lost or refused database connection (not a constraint violation or a bad query)."""
    from django.db import InterfaceError, OperationalError

    return isinstance(exc, OperationalError | InterfaceError)


DATABASE_UNAVAILABLE_BODY = {"detail": DATABASE_UNAVAILABLE, "problems": [DATABASE_UNAVAILABLE]}


def _log_database_unavailable(request, exc: BaseException) -> None:
    import logging

    logging.getLogger("core.errors").warning(
        "database unavailable during %s %s: %s", request.method, request.path, exc, exc_info=exc
    )


def database_unavailable_api_response(request, exc: BaseException):
    """The API's answer (DRF, see core.api.exception_handler): 503 JSON with detail and problems."""
    from rest_framework.response import Response

    _log_database_unavailable(request, exc)
    return Response(
        DATABASE_UNAVAILABLE_BODY,
        status=503,
        headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
    )


class DatabaseUnavailableMiddleware:
    """Turns a lost database connection in a view into 503: a page for the HTML views, JSON
    for anything under /api/ or asked for as JSON. The page is rendered without the request's
    context (its context processors would query the database again)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exc):
        if not is_database_unavailable(exc):
            return None
        from django.http import HttpResponse, JsonResponse
        from django.template.loader import render_to_string

        _log_database_unavailable(request, exc)
        if request.path.startswith("/api/") or "application/json" in request.headers.get("Accept", ""):
            response = JsonResponse(DATABASE_UNAVAILABLE_BODY, status=503)
        else:
            page = render_to_string("503.html", {"message": DATABASE_UNAVAILABLE, "path": request.get_full_path()})
            response = HttpResponse(page, status=503)
        response["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
        response["Cache-Control"] = "no-store"
        return response
