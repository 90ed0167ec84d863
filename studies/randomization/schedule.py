"""What a reading schedule is: sessions of trials, and the names of designs and trial kinds."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ALGORITHM_VERSION = "xrs-schedule/1"

FULLY_CROSSED = "fully_crossed"
LATIN_SQUARE = "latin_square"
DESIGNS = (FULLY_CROSSED, LATIN_SQUARE)

TRAINING = "training"
MAIN = "main"
ATTENTION = "attention"
KINDS = (TRAINING, MAIN, ATTENTION)

CaseId = str | int


class ScheduleError(ValueError):
    """The design cannot be scheduled; ``problems`` holds one sentence per problem."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__(" ".join(self.problems))


@dataclass(frozen=True)
class Trial:
    position: int  # 0-based within its session
    case: CaseId
    arm: str
    kind: str  # "training", "main" or "attention"


@dataclass(frozen=True)
class Session:
    index: int
    period: int  # fully crossed: which pass over all cases (0..A-1); latin square: always 0
    unlock_after_days: int  # days after the reader's first session
    trials: tuple[Trial, ...]


@dataclass(frozen=True)
class Schedule:
    algorithm: str
    seed: int
    reader_index: int
    design: str
    sessions: tuple[Session, ...]

    def trials(self) -> Iterator[Trial]:
        """All trials, session by session, in reading order."""
        for session in self.sessions:
            yield from session.trials

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form; :meth:`from_dict` reads it back to an equal schedule."""
        return {
            "algorithm": self.algorithm,
            "seed": self.seed,
            "reader_index": self.reader_index,
            "design": self.design,
            "sessions": [
                {
                    "index": session.index,
                    "period": session.period,
                    "unlock_after_days": session.unlock_after_days,
                    "trials": [
                        {
                            "position": trial.position,
                            "case": trial.case,
                            "arm": trial.arm,
                            "kind": trial.kind,
                        }
                        for trial in session.trials
                    ],
                }
                for session in self.sessions
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Schedule:
        return cls(
            algorithm=str(data["algorithm"]),
            seed=int(data["seed"]),
            reader_index=int(data["reader_index"]),
            design=str(data["design"]),
            sessions=tuple(
                Session(
                    index=int(session["index"]),
                    period=int(session["period"]),
                    unlock_after_days=int(session["unlock_after_days"]),
                    trials=tuple(
                        Trial(
                            position=int(trial["position"]),
                            case=trial["case"],
                            arm=str(trial["arm"]),
                            kind=str(trial["kind"]),
                        )
                        for trial in session["trials"]
                    ),
                )
                for session in data["sessions"]
            ),
        )
