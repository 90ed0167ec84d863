"""The reader's pages and blinding: no page or embedded payload names the explainer, the placebo,
the arm, the case or its ground truth, or says whether the AI is right."""

from __future__ import annotations

import json
import uuid

import pytest

from library.models import CaseLabel
from studies.models import Arm, Trial
from studies.selectors import trial_stages
from studies.services.reading import trial_answer, trial_reveal, trial_show
from tests.studies import reader_views_helpers
from tests.studies.reader_views_helpers import (
    advance_to,
    answers_for,
    assert_blind,
    client_for,
    embedded_payload,
    enroll,
    file_url,
    give_files,
    mark_arms,
    next_trial,
    without_csrf,
)

pytestmark = pytest.mark.django_db

# The fixtures of reader_views_helpers.py.
two_stage_study = reader_views_helpers.two_stage_study
reading = reader_views_helpers.reading
client_a = reader_views_helpers.client_a


def test_before_the_unaided_answer_the_page_holds_neither_the_ai_output_nor_the_overlay(
    reading, client_a
):
    give_files(reading.study)
    trial = advance_to(reading, Arm.Kind.AI_EXPLAINER)
    html = client_a.get(f"/read/trials/{trial.uid}/").content.decode()
    payload = embedded_payload(html)
    assert payload["stage"] == "first" and payload["ai"] is None and payload["overlay_url"] is None
    assert "files/overlay" not in html and "positive_probability" not in html.replace(
        '"ai": null', ""
    )
    assert [q["key"] for q in payload["questions"]] == ["diagnosis", "confidence"]
    reader = reading.reader
    trial_answer(
        acting_user=reader,
        trial=Trial.objects.get(pk=trial.pk),
        stage="first",
        answers=answers_for(trial, "first"),
        client_key=uuid.uuid4(),
    )
    html = client_a.get(f"/read/trials/{trial.uid}/").content.decode()
    payload = embedded_payload(html)
    assert payload["stage"] == "reveal" and payload["ai"] is None and "files/overlay" not in html
    trial_reveal(acting_user=reader, trial=Trial.objects.get(pk=trial.pk))
    payload = embedded_payload(client_a.get(f"/read/trials/{trial.uid}/").content.decode())
    assert payload["stage"] == "final" and payload["ai"]["label"] in ("nodule", "normal")
    assert payload["overlay_url"] == file_url(trial, "overlay")


# Blinding -----------------------------------------------------------------------------------


def test_no_page_names_the_arm_explainer_case_or_truth_at_any_step(
    coordinator, two_stage_study, reader_a
):
    mark_arms(two_stage_study)
    give_files(two_stage_study)
    enrollment = enroll(coordinator, two_stage_study, reader_a, consent=False)
    client = client_for(reader_a)
    seen_kinds = set()
    assert_blind(
        client.get(f"/read/{two_stage_study.pk}/").content.decode(), next_trial(enrollment)
    )
    client.post(
        f"/read/{two_stage_study.pk}/", {"consent_version": two_stage_study.consent_version}
    )
    while (trial := next_trial(enrollment)) is not None:
        seen_kinds.add(trial.arm.kind)
        for url in ("/read/", f"/read/{two_stage_study.pk}/", f"/read/trials/{trial.uid}/"):
            assert_blind(client.get(url).content.decode(), trial)
        payload = embedded_payload(client.get(f"/read/trials/{trial.uid}/").content.decode())
        assert payload["feedback"] is None
        if len(trial_stages(trial=trial, study=two_stage_study)) == 2:
            trial_answer(
                acting_user=reader_a,
                trial=Trial.objects.get(pk=trial.pk),
                stage="first",
                answers=answers_for(trial, "first"),
                client_key=uuid.uuid4(),
            )
            trial_reveal(acting_user=reader_a, trial=Trial.objects.get(pk=trial.pk))
            page = client.get(f"/read/trials/{trial.uid}/")
            assert_blind(page.content.decode(), trial)
            for name in ("pixels", "display", "overlay"):
                served = client.get(file_url(trial, name))
                if name == "overlay" and not trial.arm.shows_explanation:
                    assert served.status_code == 404
                    continue
                assert served.status_code == 200
                assert_blind(json.dumps(dict(served.headers)), trial)
                assert "Content-Disposition" not in served.headers
        trial_answer(
            acting_user=reader_a,
            trial=Trial.objects.get(pk=trial.pk),
            stage="final",
            answers=answers_for(trial, "final"),
            client_key=uuid.uuid4(),
        )
    assert seen_kinds == set(Arm.Kind.values)


def test_the_trial_page_is_the_same_whatever_the_ground_truth_and_whether_the_ai_is_right(
    reading, reader_a, client_a
):
    give_files(reading.study)
    trial = advance_to(reading, Arm.Kind.PLACEBO)
    trial_show(acting_user=reader_a, trial=trial)
    trial_answer(
        acting_user=reader_a,
        trial=trial,
        stage="first",
        answers=answers_for(trial, "first"),
        client_key=uuid.uuid4(),
    )
    trial_reveal(acting_user=reader_a, trial=Trial.objects.get(pk=trial.pk))
    before = without_csrf(client_a.get(f"/read/trials/{trial.uid}/").content.decode())
    label = CaseLabel.objects.get(case=trial.case)
    # Flipping the label flips both the truth and whether the AI is right.
    label.name = "normal" if label.name == "nodule" else "nodule"
    label.save()
    after = without_csrf(client_a.get(f"/read/trials/{trial.uid}/").content.decode())
    assert embedded_payload(before)["ai"] is not None and embedded_payload(before)["overlay_url"]
    assert before == after


# Files --------------------------------------------------------------------------------------
