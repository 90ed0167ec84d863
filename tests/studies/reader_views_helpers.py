"""Shared by the reader page tests (test_reader_views_*.py, test_reader_trial_page.py and others):
enrolment, answering and file helpers, and the reading fixtures."""

from __future__ import annotations

import json
import re
import uuid

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client

from explain.models import Explanation
from library.models import Case
from studies import services
from studies.models import Arm, Enrollment, Study, Trial
from studies.selectors import questions_for, trial_stages
from studies.services.reading import enrollment_consent, trial_answer, trial_reveal, trial_show

PAYLOAD_SCRIPT = re.compile(
    r'<script id="trial-payload" type="application/json">(.*?)</script>', re.S
)
CSRF_VALUES = re.compile(r'(data-csrf-token="|name="csrfmiddlewaretoken" value=")[^"]*')
# Distinctive arm codes, so that a leaked code can be searched for (the default A-D are letters).
ARM_CODES = {"unaided": "QZUN", "ai": "QZAI", "ai_explainer": "QZEX", "placebo": "QZPL"}
FORBIDDEN = [
    "gradcam",
    "placebo",
    "ai_wrong",
    "ai_right",
    "explainer",
    *[c.lower() for c in ARM_CODES.values()],
]


# Helpers (also used by test_reader_api) -----------------------------------------------------


def enroll(coordinator, study: Study, reader, *, consent: bool = True) -> Enrollment:
    enrollment = services.reader_enroll(acting_user=coordinator, study=study, reader=reader)
    if consent:
        enrollment_consent(
            acting_user=reader, enrollment=enrollment, consent_version=study.consent_version
        )
    return enrollment


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def next_trial(enrollment: Enrollment) -> Trial | None:
    return (
        Trial.objects.filter(session__enrollment=enrollment)
        .exclude(state=Trial.State.DONE)
        .select_related("arm", "case", "session__enrollment__study")
        .order_by("session__index", "position")
        .first()
    )


def answers_for(trial: Trial, stage: str) -> dict:
    study = trial.session.enrollment.study
    values = {"diagnosis": "nodule", "confidence": 70, "likert": 4, "free_text": "ok"}
    return {q.key: values[q.kind] for q in questions_for(study=study, trial=trial, stage=stage)}


def complete(reader, trial: Trial) -> None:
    """Read a trial to the end through the services."""
    trial_show(acting_user=reader, trial=trial)
    study = trial.session.enrollment.study
    if len(trial_stages(trial=trial, study=study)) == 2:
        trial_answer(
            acting_user=reader,
            trial=trial,
            stage="first",
            answers=answers_for(trial, "first"),
            client_key=uuid.uuid4(),
        )
        trial_reveal(acting_user=reader, trial=trial)
    trial_answer(
        acting_user=reader,
        trial=trial,
        stage="final",
        answers=answers_for(trial, "final"),
        client_key=uuid.uuid4(),
    )


def advance_to(enrollment: Enrollment, kind: str) -> Trial:
    """Complete trials until the next one is under an arm of this kind."""
    while True:
        trial = next_trial(enrollment)
        if trial.arm.kind == kind:
            return trial
        complete(enrollment.reader, trial)


def embedded_payload(html: str) -> dict:
    found = PAYLOAD_SCRIPT.search(html)
    assert found, "the trial page embeds its payload"
    return json.loads(found.group(1))


def mark_arms(study: Study) -> None:
    for arm in study.arms.all():
        Arm.objects.filter(pk=arm.pk).update(code=ARM_CODES[arm.kind])


def without_csrf(html: str) -> str:
    return CSRF_VALUES.sub(r"\1", html)


def assert_blind(text: str, trial: Trial) -> None:
    lowered = without_csrf(text).lower()
    for word in [*FORBIDDEN, trial.case.key.lower()]:
        assert word not in lowered, f"{word!r} reached the reader"


def give_files(study: Study) -> None:
    """Stored files for every case and explanation of the study, under names that carry the case
    key and the explainer (so that a leaked name would show)."""
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 56
    for case in Case.objects.filter(collection__in=study.collections.all()):
        case.pixels_file.name = default_storage.save(
            f"cases/{case.key}/pixels.npy", ContentFile(b"\x93NUMPY" + b"\0" * 58)
        )
        case.display_file.name = default_storage.save(
            f"cases/{case.key}/display.png", ContentFile(png)
        )
        case.thumbnail_file.name = default_storage.save(
            f"cases/{case.key}/thumb.png", ContentFile(png)
        )
        case.save(update_fields=["pixels_file", "display_file", "thumbnail_file"])
    for explanation in Explanation.objects.filter(model=study.model).select_related("case"):
        folder = f"{explanation.explainer}{'-placebo' if explanation.placebo else ''}"
        explanation.overlay_file.name = default_storage.save(
            f"explanations/{folder}/{explanation.case.key}/overlay.png", ContentFile(png)
        )
        explanation.save(update_fields=["overlay_file"])


def file_url(trial: Trial, name: str) -> str:
    return f"/read/trials/{trial.uid}/files/{name}"


# Fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def two_stage_study(coordinator, ready_study):
    services.study_update(
        acting_user=coordinator,
        study=ready_study,
        protocol="two_stage",
        instructions="Read each image, then answer.",
    )
    return services.study_open(acting_user=coordinator, study=ready_study)


@pytest.fixture
def reading(coordinator, two_stage_study, reader_a) -> Enrollment:
    return enroll(coordinator, two_stage_study, reader_a)


@pytest.fixture
def client_a(reader_a) -> Client:
    return client_for(reader_a)


# Reader home, consent, study home -----------------------------------------------------------
