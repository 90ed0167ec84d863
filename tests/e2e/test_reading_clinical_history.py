"""A reader reads, in chromium, one case in an arm that shows the clinical history and one in an
arm that does not: the first page shows a labelled "Clinical history" panel with the case's own
text, the second has no trace of it (no panel, hidden or not, and nothing in its payload), and
otherwise the two pages show the same things.

The study is built here (the study of reading_helpers.py has no arm with the history): two
unaided arms, with and without the history, a Latin-square split of two demo cases."""

from __future__ import annotations

import re

import pytest

from library import services as library_services
from studies import services
from studies.models import Enrollment
from studies.services.reading import enrollment_consent
from tests.e2e.reading_helpers import (
    UNBLINDING,
    read_by_service,
    schedule,
    trial_url,
    wait_ready,
)
from tests.explain.engine_fixtures import import_demo_collection, register_demo_architecture

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

LAPTOP_800 = (1280, 800)
NUMBERS = re.compile(r"\d+")
AI_ONLY = ("clarity", "usefulness", "trust", "region_agreement")  # no arm shows the AI


def history_of(case) -> str:
    return f"{40 + case.pk}-year-old smoker, cough for 3 weeks"


@pytest.fixture
def history_reader(coordinator, reader_a, demo_dataset, tmp_path):
    """reader_a, consented, in an open study whose arm A shows the history and arm B does not."""
    collection = import_demo_collection(demo_dataset, name="history")
    for case in collection.cases.all():
        library_services.case_clinical_history_set(
            acting_user=coordinator, case=case, clinical_history=history_of(case)
        )
    study = services.study_create(
        acting_user=coordinator,
        title="History reading",
        model=register_demo_architecture(tmp_path, name="history-net"),
        collections=[collection],
        consent_text="I agree to take part in this reader study.",
        design="latin_square",
        sessions=1,
    )
    services.arm_add(
        acting_user=coordinator, study=study, kind="unaided", shows_clinical_history=True
    )
    services.arm_add(acting_user=coordinator, study=study, kind="unaided")
    for question in services.questions_add_defaults(acting_user=coordinator, study=study):
        if question.key in AI_ONLY:
            services.question_remove(acting_user=coordinator, question=question)
    services.study_cases_select(acting_user=coordinator, study=study, main_count=2)
    services.study_open(acting_user=coordinator, study=study)
    services.study_role_add(acting_user=coordinator, study=study, user=reader_a, role="reader")
    enrollment = Enrollment.objects.get(study=study, reader=reader_a)
    enrollment_consent(
        acting_user=reader_a, enrollment=enrollment, consent_version=study.consent_version
    )
    return reader_a


def test_the_history_shows_only_in_the_arm_that_shows_it(
    live_server, history_reader, new_page, artifacts_dir
):
    page = new_page(viewport=LAPTOP_800, user=history_reader, base_url=live_server.url)
    seen = {}
    for trial in schedule(history_reader):
        page.goto(trial_url(live_server, trial))
        wait_ready(page)
        panel = page.locator("section.clinical-history")
        shows = trial.arm.shows_clinical_history
        if shows:
            heading = page.get_by_role("heading", name="Clinical history")
            assert heading.is_visible() and panel.is_visible()
            assert page.get_by_role("region", name="Clinical history").count() == 1
            assert panel.inner_text().splitlines()[-1] == history_of(trial.case)
            (artifacts_dir / "screenshots").mkdir(exist_ok=True)
            page.screenshot(path=str(artifacts_dir / "screenshots" / "clinical-history.png"))
        else:
            assert panel.count() == 0
            assert "clinical" not in page.content().lower()
        payload = page.evaluate(
            "() => JSON.parse(document.getElementById('trial-payload').textContent)"
        )
        assert ("clinical_history" in payload) == shows
        text = page.locator(".trial-panel").inner_text()
        assert not UNBLINDING.search(page.locator("body").inner_text())  # what the reader reads
        seen[shows] = NUMBERS.sub("#", text.replace(panel.inner_text() if shows else "", ""))
        read_by_service(history_reader, trial)
    assert set(seen) == {True, False}
    assert seen[True].split() == seen[False].split()  # the rest of the panel reads the same
