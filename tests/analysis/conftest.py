"""A finished two-stage study (two readers, every trial answered) for the study-level analysis."""

from __future__ import annotations

import uuid

import pytest

from studies import services
from studies.models import ReaderProfile, Trial
from studies.selectors import questions_for, trial_stages
from studies.services.reading import enrollment_consent, trial_answer, trial_reveal, trial_show
from tests.studies.conftest import draft_study, ready_study, study_collection, study_model  # noqa: F401


def _answer(trial, stage, *, reader_index: int) -> dict:
    study = trial.session.enrollment.study
    truth_positive = trial.case.labels.filter(name="nodule", value=1).exists()
    # reader 0 is always right; reader 1 misses every third case
    right = reader_index == 0 or trial.position % 3 != 0
    call = truth_positive if right else not truth_positive
    answers = {}
    for q in questions_for(study=study, trial=trial, stage=stage):
        if q.kind == "diagnosis":
            answers[q.key] = "nodule" if call else "normal"
        elif q.kind == "confidence":
            answers[q.key] = 80 if call else 20
        elif q.kind == "likert":
            answers[q.key] = 2 + trial.position % 4
        else:
            answers[q.key] = "fine"
    return answers


def read_everything(enrollment) -> None:
    reader = enrollment.reader
    while True:
        trial = (
            Trial.objects.filter(session__enrollment=enrollment).exclude(state="done")
            .select_related("arm", "case", "session__enrollment__study").order_by("session__index", "position").first()
        )
        if trial is None:
            return
        trial_show(acting_user=reader, trial=trial)
        stages = trial_stages(trial=trial, study=enrollment.study)
        if len(stages) == 2:
            trial_answer(acting_user=reader, trial=trial, stage="first",
                         answers=_answer(trial, "first", reader_index=enrollment.reader_index), client_key=uuid.uuid4())
            trial_reveal(acting_user=reader, trial=trial)
        trial_answer(acting_user=reader, trial=trial, stage="final",
                     answers=_answer(trial, "final", reader_index=enrollment.reader_index), client_key=uuid.uuid4(),
                     interactions={"window_changes": 2, "overlay_opacity": 0.5})


@pytest.fixture
def finished_study(coordinator, ready_study, reader_a, reader_b):  # noqa: F811
    services.study_update(acting_user=coordinator, study=ready_study, protocol="two_stage")
    ReaderProfile.objects.create(user=reader_a, years_experience=12, specialty="thoracic", is_radiologist=True)
    ReaderProfile.objects.create(user=reader_b, years_experience=2, specialty="resident", is_radiologist=False)
    services.study_open(acting_user=coordinator, study=ready_study)
    for reader in (reader_a, reader_b):
        enrollment = services.reader_enroll(acting_user=coordinator, study=ready_study, reader=reader)
        enrollment_consent(acting_user=reader, enrollment=enrollment, consent_version=ready_study.consent_version)
        read_everything(enrollment)
    return ready_study
