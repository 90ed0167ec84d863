"""`make demo`'s study: built through the coordinator's services, precomputed and open."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from demo import study as demo
from explain.models import Explanation
from studies import blinding, selectors
from studies.models import Response, Study, StudyRole, Trial

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_demo_study_opens_with_four_arms_and_enrolled_readers(settings, tmp_path, eager):
    settings.VAR_DIR = tmp_path / "var"
    call_command(
        "demo_setup", cases=16, seed=3, epochs=1, no_progress=True, no_background=True,
        stdout=io.StringIO(), stderr=io.StringIO(),
    )
    out = io.StringIO()
    call_command("demo_study", main_cases=2, training_cases=1, attention_cases=1, simulated_readers=0, stdout=out)
    study = Study.objects.get(title=demo.DEMO_STUDY_TITLE)
    assert study.status == Study.Status.OPEN, out.getvalue()
    assert list(study.arms.values_list("kind", "explainer")) == [
        ("unaided", ""), ("ai_explainer", "gradcam"), ("ai_explainer", "occlusion"), ("placebo", "gradcam")
    ]
    assert study.arms.get(explainer="occlusion").params["window"] == demo.DEMO_OCCLUSION["window"]
    assert sorted(study.enrollments.values_list("reader__username", flat=True)) == list(demo.DEMO_READERS)
    assert StudyRole.objects.filter(study=study, role="statistician", user__username="statistician").exists()
    # the occlusion arm's explanations exist for the study's cases only
    occlusion_cases = set(Explanation.objects.filter(explainer="occlusion").values_list("case_id", flat=True))
    assert occlusion_cases == set(study.study_cases.values_list("case_id", flat=True))
    assert "is open" in out.getvalue()
    # readers are told a neutral title and text; the protocol's description names the arms
    assert study.reader_title == demo.DEMO_READER_TITLE
    assert selectors.study_reader_text_warnings(study=study) == []
    assert blinding.unblinding_terms(study.description)  # the internal description names the arms

    again = io.StringIO()
    call_command("demo_study", main_cases=2, training_cases=1, attention_cases=1, simulated_readers=1, stdout=again)
    assert Study.objects.filter(title=demo.DEMO_STUDY_TITLE).count() == 1
    assert "already open" in again.getvalue()
    _simulated_times_lie_within_the_study(Study.objects.get(title=demo.SIMULATED_TITLE))


def _simulated_times_lie_within_the_study(study: Study) -> None:
    assert study.status == Study.Status.CLOSED and study.opened_at < study.closed_at
    trials = Trial.objects.filter(session__enrollment__study=study)
    assert trials.exists()
    for trial in trials:
        assert study.opened_at < trial.started_at <= trial.completed_at < study.closed_at
    for response in Response.objects.filter(trial__in=trials):
        assert study.opened_at < response.submitted_at < study.closed_at
    for enrollment in study.enrollments.all():
        assert study.opened_at <= enrollment.enrolled_at <= enrollment.consented_at <= enrollment.started_at


def test_the_demo_study_needs_the_demo_loaded_first(db):
    with pytest.raises(CommandError):
        call_command("demo_study", stdout=io.StringIO(), stderr=io.StringIO())
