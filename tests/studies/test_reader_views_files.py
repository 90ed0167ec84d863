"""The trial's files: served privately, only once visible, real and placebo overlays alike."""

from __future__ import annotations

import json
import re
import uuid

import pytest

from studies.models import Arm, Trial
from studies.services.reading import trial_answer, trial_reveal, trial_show
from tests.studies import reader_views_helpers
from tests.studies.reader_views_helpers import (
    advance_to,
    answers_for,
    assert_blind,
    complete,
    file_url,
    give_files,
    next_trial,
)

pytestmark = pytest.mark.django_db

# The fixtures of reader_views_helpers.py.
two_stage_study = reader_views_helpers.two_stage_study
reading = reader_views_helpers.reading
client_a = reader_views_helpers.client_a


def test_files_are_served_privately_without_a_name_and_with_an_etag(reading, client_a):
    give_files(reading.study)
    trial = next_trial(reading)
    client_a.get(f"/read/trials/{trial.uid}/")
    served = client_a.get(file_url(trial, "display"))
    assert served.status_code == 200
    assert served["Content-Type"] == "image/png"
    assert served["Cache-Control"] == "private, max-age=86400"
    assert served["X-Content-Type-Options"] == "nosniff"
    assert "Content-Disposition" not in served.headers
    assert b"".join(served.streaming_content).startswith(b"\x89PNG")
    etag = served["ETag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)
    assert trial.case.key not in etag
    again = client_a.get(file_url(trial, "display"), HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and again["ETag"] == etag
    pixels = client_a.get(file_url(trial, "pixels"))
    assert pixels["Content-Type"] == "application/octet-stream" and pixels["ETag"] != etag


@pytest.mark.parametrize("name", ["thumbnail", "overlay", "similar-0", "..%2Fpixels", "heatmap"])
def test_unknown_or_not_yet_visible_files_are_not_found(reading, client_a, name):
    give_files(reading.study)
    trial = advance_to(reading, Arm.Kind.AI_EXPLAINER)
    client_a.get(f"/read/trials/{trial.uid}/")
    assert client_a.get(file_url(trial, name)).status_code == 404


def test_the_overlay_is_served_only_after_the_reveal(reading, reader_a, client_a):
    give_files(reading.study)
    trial = advance_to(reading, Arm.Kind.AI_EXPLAINER)
    client_a.get(f"/read/trials/{trial.uid}/")
    assert client_a.get(file_url(trial, "overlay")).status_code == 404
    trial_answer(
        acting_user=reader_a,
        trial=Trial.objects.get(pk=trial.pk),
        stage="first",
        answers=answers_for(trial, "first"),
        client_key=uuid.uuid4(),
    )
    assert client_a.get(file_url(trial, "overlay")).status_code == 404
    trial_reveal(acting_user=reader_a, trial=Trial.objects.get(pk=trial.pk))
    assert client_a.get(file_url(trial, "overlay")).status_code == 200


def test_real_and_placebo_overlays_are_served_identically(reading, reader_a, client_a):
    give_files(reading.study)
    served = {}
    while len(served) < 2:
        trial = next_trial(reading)
        kind = trial.arm.kind
        if kind not in (Arm.Kind.AI_EXPLAINER, Arm.Kind.PLACEBO) or kind in served:
            complete(reader_a, trial)
            continue
        trial_show(acting_user=reader_a, trial=trial)
        trial_answer(
            acting_user=reader_a,
            trial=trial,
            stage="first",
            answers=answers_for(trial, "first"),
            client_key=uuid.uuid4(),
        )
        trial_reveal(acting_user=reader_a, trial=Trial.objects.get(pk=trial.pk))
        response = client_a.get(file_url(trial, "overlay"))
        assert response.status_code == 200
        served[kind] = (response, trial)
        trial_answer(
            acting_user=reader_a,
            trial=Trial.objects.get(pk=trial.pk),
            stage="final",
            answers=answers_for(trial, "final"),
            client_key=uuid.uuid4(),
        )
    (real, real_trial), (placebo, placebo_trial) = (
        served[Arm.Kind.AI_EXPLAINER],
        served[Arm.Kind.PLACEBO],
    )
    assert real["Content-Type"] == placebo["Content-Type"] == "image/png"
    assert sorted(real.headers) == sorted(placebo.headers)
    for name in ("Cache-Control", "X-Content-Type-Options", "Content-Length"):
        assert real[name] == placebo[name]
    assert_blind(json.dumps(dict(real.headers)), real_trial)
    assert_blind(json.dumps(dict(placebo.headers)), placebo_trial)
