"""What the HTML pages of every app share: a service call whose refusal is shown on the page.

A service refuses bad input with `core.errors.ServiceError`; a page lists its problems and
answers HTTP 400 (`BAD_INPUT`), or, for a button that redirects, shows them as messages. The
API says the same through `core.api.exception_handler`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.contrib import messages

from core.errors import ServiceError

BAD_INPUT = 400

T = TypeVar("T")


def attempt(write: Callable[..., T], /, **kwargs: Any) -> tuple[T | None, list[str]]:
    """Call `write(**kwargs)`: (its result, []) when it succeeds, (None, the problems it was
    refused with) when it raises ServiceError."""
    try:
        return write(**kwargs), []
    except ServiceError as exc:
        return None, exc.problems


def flash_problems(request, problems: list[str]) -> None:
    """Show a refusal as one error message per problem (for a page that redirects)."""
    for problem in problems:
        messages.error(request, problem)
