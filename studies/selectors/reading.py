"""The reader's rules, said once: whether a reader may act on a trial now (`reader_refusal`),
which stages a trial has, which explanation its arm shows and which questions it asks. The
reader's pages, the reading API and the reading services all ask here."""

from __future__ import annotations

from dataclasses import dataclass

from explain.models import Explanation
from studies.models import Arm, Enrollment, Question, Response, Study, Trial
from studies.selectors.explanations import arm_explanations, explanation_is_empty
from studies.selectors.progress import enrollment_sessions

# Why a reader may not act (Refusal.reason).
CLOSED = "closed"
CONSENT = "consent"
ANOTHER_READER = "another_reader"
FINISHED = "finished"
OUT_OF_ORDER = "out_of_order"
LOCKED = "locked"


@dataclass(frozen=True)
class Refusal:
    """Why the reader may not act now: `reason` (one of the names above) and the sentence that
    tells them."""

    reason: str
    message: str


def enrollment_has_consented(*, enrollment: Enrollment) -> bool:
    return (
        enrollment.consented_at is not None
        and enrollment.consent_version == enrollment.study.consent_version
    )


def enrollment_next_trial(*, enrollment: Enrollment) -> Trial | None:
    """The first trial of the reader's schedule not done yet (readers read in schedule order)."""
    return (
        Trial.objects.filter(session__enrollment=enrollment)
        .exclude(state=Trial.State.DONE)
        .select_related("session", "arm")
        .order_by("session__index", "position")
        .first()
    )


def reader_refusal(*, user, enrollment: Enrollment, trial: Trial | None = None) -> Refusal | None:
    """None when `user` may act now; otherwise why not. Without a trial: may they read in this
    study at all (it is open and they consented to its current text). With one: may they show
    or answer that trial (theirs, the next of their schedule, in a session that is open)."""
    study = enrollment.study
    if enrollment.reader_id != user.pk:
        return Refusal(ANOTHER_READER, "this trial belongs to another reader")
    if study.status != Study.Status.OPEN:
        return Refusal(
            CLOSED,
            f"the study '{study.reader_facing_title}' is {study.status}; it takes no more reads",
        )
    if not enrollment_has_consented(enrollment=enrollment):
        return Refusal(CONSENT, "give your consent to the study before reading")
    if trial is None:
        return None
    current = enrollment_next_trial(enrollment=enrollment)
    if current is None or current.pk != trial.pk:
        if trial.state == Trial.State.DONE:
            return Refusal(
                FINISHED, "this trial is finished; answers cannot be changed and you cannot go back"
            )
        return Refusal(
            OUT_OF_ORDER,
            "this is not your next trial; trials are read in the order of your schedule",
        )
    session = next(
        s for s in enrollment_sessions(enrollment=enrollment) if s["index"] == trial.session.index
    )
    if not session["unlocked"]:
        when = session["unlocks_at"]
        return Refusal(
            LOCKED,
            "this session is not open yet"
            + (
                f"; it opens on {when:%Y-%m-%d %H:%M} UTC"
                if when
                else " (finish the previous session first)"
            ),
        )
    return None


# What a trial shows and asks --------------------------------------------------------------------


def trial_stages(*, trial: Trial, study: Study) -> list[str]:
    if study.protocol == Study.Protocol.TWO_STAGE and trial.arm.shows_ai:
        return [Response.Stage.FIRST, Response.Stage.FINAL]
    return [Response.Stage.FINAL]


def trial_explanation(*, trial: Trial) -> Explanation | None:
    """The explanation the trial's arm shows (placebo or real), or None."""
    arm = trial.arm
    if not arm.shows_explanation:
        return None
    model_id = trial.session.enrollment.study.model_id
    return arm_explanations(arm=arm, model_id=model_id, case_ids=[trial.case_id]).first()


def trial_heatmap_empty(*, trial: Trial, explanation: Explanation | None = None) -> bool:
    """Whether the trial's arm shows a heatmap that highlights (next to) nothing. Such a trial
    shows a neutral "No region highlighted" note, the same for every explainer and placebo, and
    asks no question about the highlighted region. Pass the trial's `explanation` when it is
    already loaded (it is looked up otherwise)."""
    if not trial.arm.shows_heatmap:
        return False
    if explanation is None:
        explanation = trial_explanation(trial=trial)
    return explanation is not None and explanation_is_empty(explanation=explanation)


def _question_applies(question: Question, arm: Arm, first_of_two: bool) -> bool:
    if first_of_two and (
        question.stage == Question.Stage.FINAL or question.applies_to != Question.AppliesTo.ALL
    ):
        return False
    if question.kind == Question.Kind.ADVICE and (first_of_two or not arm.shows_ai):
        return False  # advice on the AI output: only once it is shown (configuration says so too)
    return {
        Question.AppliesTo.AI: arm.shows_ai,
        Question.AppliesTo.EXPLANATION: arm.shows_explanation,
        Question.AppliesTo.HEATMAP: arm.shows_heatmap,
    }.get(question.applies_to, True)


def questions_for(
    *, study: Study, trial: Trial, stage: str, explanation: Explanation | None = None
) -> list[Question]:
    """The questions a trial asks at a stage, for its arm. The unaided first stage asks only the
    questions for every arm that are asked at every stage (e.g. diagnosis, confidence,
    probability); a question on the AI advice is asked only where the AI output shows. A trial
    whose heatmap highlights no region asks no question about the highlighted region."""
    arm = trial.arm
    first_of_two = stage == Response.Stage.FIRST
    chosen = [q for q in study.questions.all() if _question_applies(q, arm, first_of_two)]
    if any(q.applies_to == Question.AppliesTo.HEATMAP for q in chosen) and trial_heatmap_empty(
        trial=trial, explanation=explanation
    ):
        chosen = [q for q in chosen if q.applies_to != Question.AppliesTo.HEATMAP]
    return chosen
