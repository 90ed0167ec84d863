"""What management commands share: one line per problem, exit code 1, progress bars."""

from __future__ import annotations

import sys

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from core.errors import ServiceError


class ProblemCommand(BaseCommand):
    """A command that reports expected failures as lines, never as a traceback."""

    def execute(self, *args, **options):
        try:
            return super().execute(*args, **options)
        except ServiceError as exc:
            self.fail(exc.problems)

    def fail(self, problems: list[str], summary: str | None = None):
        for line in problems:
            self.stderr.write(line)
        raise CommandError(
            summary or f"{len(problems)} problem(s); nothing was changed", returncode=1
        )

    def acting_user(self, username: str | None):
        if not username:
            return None
        try:
            return get_user_model().objects.get(username=username)
        except get_user_model().DoesNotExist:
            raise CommandError(f"--user {username!r}: no such user", returncode=1) from None

    def progress_bar(self, *, total: int, desc: str, enabled: bool = True):
        return tqdm(
            total=total,
            desc=desc,
            unit="file",
            file=sys.stderr,
            disable=not enabled,
            dynamic_ncols=True,
            leave=True,
        )
