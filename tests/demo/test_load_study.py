"""The load-test study (manage.py load_study) and its report (manage.py load_study_report),
which bench/load_readers.py and tests/stack/test_load.py rely on."""

from __future__ import annotations

import io
import json
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from studies.models import Study, Trial
from studies.selectors import questions_for
from studies.services.reading import enrollment_consent, trial_answer, trial_show

pytestmark = pytest.mark.django_db

PASSWORD = "Load-test-readers-2026"


def _answers(trial, stage):
    values = {"diagnosis": "nodule", "confidence": 55, "likert": 3, "free_text": "seen"}
    return {q.key: values[q.kind] for q in questions_for(study=trial.session.enrollment.study, trial=trial, stage=stage)}


@pytest.mark.django_db(transaction=True)  # the precompute is queued on commit
def test_load_study_opens_a_study_whose_readers_log_in_with_the_password_and_the_report_shows_their_answers(eager):
    out = io.StringIO()
    call_command("load_study", "--readers", "3", "--cases-per-reader", "4", "--password", PASSWORD,
                 stdout=out, stderr=io.StringIO())
    built = json.loads(out.getvalue().strip().splitlines()[-1])
    study = Study.objects.get(pk=built["study"])
    assert study.status == Study.Status.OPEN and study.protocol == Study.Protocol.TWO_STAGE
    assert len(built["readers"]) == 3 and study.enrollments.count() == 3
    assert sorted(study.arms.values_list("kind", flat=True)) == ["ai", "ai_explainer", "placebo", "unaided"]
    reader = get_user_model().objects.get(username=built["readers"][0])
    assert reader.check_password(PASSWORD)
    # every reader reads the 4 cases, each under another arm
    trials = Trial.objects.filter(session__enrollment__reader=reader).select_related("arm").order_by("position")
    assert len(trials) == 4 and len({t.arm.code for t in trials}) == 4

    enrollment = reader.enrollments.get(study=study)
    enrollment_consent(acting_user=reader, enrollment=enrollment, consent_version=study.consent_version)
    first = trials[0]
    trial_show(acting_user=reader, trial=first)
    first.refresh_from_db()
    stage = "final" if not first.arm.shows_ai else "first"
    key = uuid.uuid4()
    trial_answer(acting_user=reader, trial=first, stage=stage, answers=_answers(first, stage), client_key=key)

    out = io.StringIO()
    call_command("load_study_report", str(study.pk), stdout=out)
    report = json.loads(out.getvalue())
    assert len(report["trials"]) == 12
    row = report["trials"][str(first.uid)]
    assert row["reader"] == reader.username
    assert row["responses"] == [
        {"stage": stage, "client_key": str(key), "answers": _answers(first, stage), "audit_rows": 1}
    ]
    assert report["audit_rows_without_response"] == []
    assert all(not t["responses"] for uid, t in report["trials"].items() if uid != str(first.uid))


def test_load_study_refuses_production_settings_unless_told(settings):
    settings.PRODUCTION = True
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("load_study", "--password", PASSWORD, stderr=err)
    assert "--allow-production" in err.getvalue()
    assert not Study.objects.exists()


def test_the_report_of_a_missing_study_is_one_line_and_exit_1():
    err = io.StringIO()
    with pytest.raises(CommandError) as excinfo:
        call_command("load_study_report", "999999", stderr=err)
    assert excinfo.value.returncode == 1
    assert err.getvalue().strip() == "no study with id 999999"
