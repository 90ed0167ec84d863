"""The one error type services raise for bad input.

Views turn it into HTTP 400 with the problems listed; commands print one line
per problem and exit 1.
"""

from __future__ import annotations


class ServiceError(Exception):
    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))
