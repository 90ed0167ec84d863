"""`make demo`'s simulated study: read by simulated readers through the real services, closed,
and its report built."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from analysis.models import StudyReport
from demo.study import SIMULATED_TITLE
from studies.models import Response, Study

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_simulated_demo_study_is_read_closed_and_reported(settings, tmp_path, eager):
    settings.VAR_DIR = tmp_path / "var"
    quiet = {"stdout": io.StringIO(), "stderr": io.StringIO()}
    call_command("demo_setup", cases=16, seed=3, epochs=1, no_progress=True, no_background=True, **quiet)
    call_command("demo_study", main_cases=4, training_cases=0, attention_cases=0, simulated_readers=2, **quiet)
    study = Study.objects.get(title=SIMULATED_TITLE)
    assert study.status == Study.Status.CLOSED
    responses = Response.objects.filter(trial__session__enrollment__study=study)
    two_stage_trials = responses.filter(stage="first").count()
    assert responses.filter(stage="final").count() == 2 * 4
    assert two_stage_trials > 0
    assert all(r.seconds_on_stage and r.seconds_on_stage > 1 for r in responses)  # simulated times
    out = io.StringIO()
    call_command("demo_report", stdout=out)
    report = StudyReport.objects.get(study=study)
    assert report.status == StudyReport.Status.DONE, report.error
    assert f"/studies/{study.pk}/reports/" in out.getvalue()
    call_command("demo_report", stdout=io.StringIO())
    assert StudyReport.objects.filter(study=study).count() == 1
