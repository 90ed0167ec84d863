"""A reader reads two whole studies through the HTTP endpoints their browser uses, and nothing
that reaches them unblinds the study.

The studies (one read in one stage, one in two stages) are open, fully crossed, with every
kind of arm: unaided (with and without the cases' clinical history), AI only, AI with a real
Grad-CAM, AI with a placebo Grad-CAM, and AI with similar cases; their predictions and explanations are computed by the real engine on the demo
data. The reader consents, then reads every trial of every session as the trial page does
(the page, its payload, the image files, answer, reveal, final answer), and on the way
triggers the errors a reader can trigger (answers that are invalid, out of order or repeated,
a reveal too early or where there is nothing to reveal, files that are not theirs to see yet or
do not exist, a finished trial, the study once it is closed). Every URL found in a response
(links, form actions, data-*-url attributes, URLs in JSON, redirects) is followed when it stays
in the reader's area.

What must hold for every response (status line, headers, cookies, body, and every URL in it):

* no explainer's name or label (every one in the explain catalog, and their aliases, except
  "similar cases", the trial page's own box), no arm kind ("placebo", "ai_explainer"; "AI"
  and "unaided" are what the reader sees anyway), no arm code, no parameter hash, no storage
  name of a file, no case key or digest, no model name, no word about truth or correctness;
* no URL outside the reader's area and no database id in a URL (only the ids of the reader's
  own studies and the uids of their own trials appear);
* no file metadata: the PNGs carry image chunks only, the pixel files (XRS pixels or .npy)
  only their array header;
* the real and the placebo explanation of a case answer exactly alike (statuses, headers,
  pages, payloads, error messages), up to the overlay image itself;
* within an arm, the answers do not depend on a case's ground truth or on whether the AI is
  right (only the AI output itself, which the arm shows, and the image differ);
* a case read with and without its clinical history answers exactly alike but for the history
  panel and the history in the payload;
* a similar case that is also a case of the study is shown without its label (it would be
  that case's ground truth), and training feedback appears only after a training trial.
"""

from __future__ import annotations

import dataclasses
import json
import re
import struct
from collections import defaultdict
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.db import connection, transaction
from django.test import override_settings

from explain.models import Prediction
from library.imaging import pixel_transfer
from library.models import CaseLabel
from studies.models import Study, StudyCase, Trial
from studies.selectors import case_truth
from tests.studies.reader_blinding_crawler import Visit, _payload, crawl_study
from tests.studies.reader_blinding_transcripts import _transcripts, normalized
from tests.studies.reader_blinding_world import (
    ARM_CODES,
    PAYLOAD_SCRIPT,
    PNG_IMAGE_CHUNKS,
    PROTOCOLS,
    XRS_HEADER_KEYS,
    World,
    _build,
    clinical_history,
)


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker, demo_dataset, tmp_path_factory):
    """Built once, in a transaction rolled back at the module's end; each test (pytest-django's
    `db`) reads in a savepoint of it."""
    from config.celery import app

    media = tmp_path_factory.mktemp("crawl-media")
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        with django_db_blocker.unblock(), override_settings(MEDIA_ROOT=media):
            name = str(connection.settings_dict["NAME"])
            assert Path(name).name.startswith("test_") or "memory" in name, (
                f"not a test database: {name}"
            )
            with transaction.atomic():
                built = _build(demo_dataset, tmp_path_factory.mktemp("crawl-model"))
                built.media = media
                yield built
                transaction.set_rollback(True)
    finally:
        app.conf.task_always_eager = eager


@pytest.fixture
def _media_root(request, settings, tmp_path):
    """The shared studies' files (instead of tests/conftest.py's folder per test)."""
    if "world" in request.fixturenames:
        settings.MEDIA_ROOT = request.getfixturevalue("world").media
    else:
        settings.MEDIA_ROOT = tmp_path / "media"
    yield settings.MEDIA_ROOT


@pytest.fixture(scope="module", params=PROTOCOLS)
def crawled(request, world, django_db_blocker):
    """One crawl per study, kept for the module's tests (in the module's transaction)."""
    with django_db_blocker.unblock():
        crawl, trials = crawl_study(world, request.param)
        study = world.studies[request.param]
        assert len(trials) == Trial.objects.filter(session__enrollment__study=study).count()
    assert {t.arm.code for t in trials} == set(ARM_CODES.values())
    return world, crawl, trials


# What the reader saw ----------------------------------------------------------------------


def _mentions(text: str, token: str) -> bool:
    return re.search(r"(?<![a-z0-9])" + re.escape(token) + r"(?![a-z0-9])", text) is not None


def _leaks(world: World, visit: Visit) -> list[str]:
    where = {
        "URL": visit.path,
        "headers": "\n".join(f"{k}: {v}" for k, v in visit.headers.items()),
        "cookies": "\n".join(f"{k}={v}" for k, v in visit.cookies.items()),
        "body": visit.text(),
    }
    found = []
    for part, text in where.items():
        lowered = text.lower()
        found += [
            f"{what} {token!r} in the {part}"
            for token, what in world.forbidden
            if _mentions(lowered, token)
        ]
    return found


def test_no_response_names_an_explainer_an_arm_a_file_or_a_case(crawled, db):
    world, crawl, _ = crawled
    assert len(crawl.visits) > 300
    leaks = [
        f"{v.method} {v.path} ({v.step}): {leak}" for v in crawl.visits for leak in _leaks(world, v)
    ]
    assert not leaks, "\n".join(leaks[:40])


def test_no_file_response_has_a_name_or_metadata(crawled, db):
    _, crawl, _ = crawled
    files = [v for v in crawl.visits if "/files/" in v.path and v.status == 200]
    assert files
    for visit in files:
        assert "Content-Disposition" not in visit.headers, visit.path
        assert not set(visit.headers) & {"Last-Modified", "Link"}, visit.path
        assert visit.headers["Cache-Control"] == "private, max-age=86400"
        if visit.body.startswith(b"\x89PNG"):
            chunks = set(_png_chunks(visit.body))
            assert chunks <= PNG_IMAGE_CHUNKS, f"{visit.path}: PNG chunks {sorted(chunks)}"
        elif pixel_transfer.is_encoded(visit.body):  # XRS pixels: the rescale and shape only
            header, _ = pixel_transfer.read_header(visit.body)
            assert set(header) <= XRS_HEADER_KEYS, f"{visit.path}: {sorted(header)}"
        else:
            assert visit.body.startswith(b"\x93NUMPY"), visit.path
            header = visit.body[10 : 10 + struct.unpack("<H", visit.body[8:10])[0]].decode()
            assert set(re.findall(r"'(\w+)'", header)) <= {"descr", "fortran_order", "shape"} | set(
                re.findall(r"'descr': '([^']*)'", header)
            ), header


def _png_chunks(data: bytes):
    position = 8
    while position < len(data):
        length = struct.unpack(">I", data[position : position + 4])[0]
        yield data[position + 4 : position + 8]
        position += 12 + length


def test_every_url_the_reader_meets_stays_in_their_area(crawled, db):
    world, crawl, trials = crawled
    own = {str(t.uid) for t in trials}
    studies = "|".join(
        str(pk) for pk in world.reader.enrollments.values_list("study_id", flat=True)
    )
    allowed = [
        r"/",
        r"/read/",
        rf"/read/({studies})/",
        rf"/read/({studies})/next/",
        r"/read/trials/(?P<uid>[0-9a-f-]{36})/",
        r"/read/trials/(?P<uid>[0-9a-f-]{36})/files/(pixels|display|overlay|similar-\d+)",
        r"/api/v1/reading/trials/(?P<uid>[0-9a-f-]{36})/(answer/|reveal/)?",
        r"/accounts/logout/",
        r"/static/[\w./-]+",
    ]
    strays = []
    for url in crawl.found | {
        v.path for v in crawl.visits if v.step.startswith(("next", "trial", "payload"))
    }:
        match = next((re.fullmatch(p, url) for p in allowed if re.fullmatch(p, url)), None)
        if match is None or ("uid" in match.groupdict() and match["uid"] not in own):
            strays.append(url)
    assert not strays, strays
    # the static files the pages load name no explainer, arm or kind either
    for url in (u for u in crawl.found if u.startswith("/static/")):
        path = finders.find(url.removeprefix(settings.STATIC_URL))
        assert path, url
        text = Path(path).read_text(errors="replace").lower()
        named = [
            t
            for t, what in world.forbidden
            if what in ("explainer", "arm code") and _mentions(text, t)
        ]
        assert not named and not _mentions(text, "placebo"), (url, named)


def test_every_url_found_was_followed(crawled, db):
    _, crawl, _ = crawled
    requested = {v.path for v in crawl.visits}
    not_followed = {
        url
        for url in crawl.found - requested
        if not url.startswith("/static/") and url not in ("/accounts/logout/",)
    }
    assert not not_followed, not_followed


# Differential checks: what may not make a difference --------------------------------------


def test_the_placebo_and_the_real_explanation_of_a_case_answer_exactly_alike(crawled, db):
    _, crawl, trials = crawled
    transcripts = _transcripts(crawl, case_fields=False)
    by_case = defaultdict(dict)
    for trial in trials:
        if trial.kind == Trial.Kind.MAIN and trial.arm.explainer == "gradcam":
            by_case[trial.case_id][trial.arm.kind] = str(trial.uid)
    pairs = [(v["ai_explainer"], v["placebo"]) for v in by_case.values() if len(v) == 2]
    assert len(pairs) == StudyCase.objects.filter(study=crawl.study, role="main").count()
    for real, placebo in pairs:
        assert len(transcripts[real]) == len(transcripts[placebo]) > 20
        for (step, one), (_, other) in zip(transcripts[real], transcripts[placebo], strict=True):
            assert one == other, f"{step}: the real and the placebo explanation differ"


def test_within_an_arm_nothing_depends_on_the_truth_or_on_whether_the_ai_is_right(crawled, db):
    _, crawl, trials = crawled
    study = crawl.study
    transcripts = _transcripts(crawl, case_fields=True)
    predicted = dict(
        Prediction.objects.filter(model=study.model).values_list("case_id", "predicted_class")
    )
    groups_compared = 0
    for code in ARM_CODES.values():
        by_group = defaultdict(list)
        for trial in trials:
            if trial.kind != Trial.Kind.MAIN or trial.arm.code != code:
                continue
            labels = dict(
                CaseLabel.objects.filter(case_id=trial.case_id).values_list("name", "value")
            )
            truth = case_truth(labels=labels, positive_class=study.model.positive_class)
            ai_right = (predicted[trial.case_id] == study.model.positive_class) == truth
            by_group[(truth, ai_right)].append([t for _, t in transcripts[str(trial.uid)]])
        assert {truth for truth, _ in by_group} == {True, False}, code
        reference = next(iter(by_group.values()))[0]
        for group, members in by_group.items():
            for member in members:
                assert member == reference, (
                    f"arm {code}: a case with truth/AI-right {group} answers differently"
                )
        groups_compared += len(by_group)
    assert groups_compared >= 2 * len(ARM_CODES)


HISTORY_PANEL = re.compile(r'\s*<section class="clinical-history".*?</section>', re.S)


def _drop_history(value):
    if isinstance(value, dict):
        return {k: _drop_history(v) for k, v in value.items() if k != "clinical_history"}
    return value


def _without_history(visit: Visit) -> Visit:
    """The visit as it would be without the clinical history panel and payload field."""
    if not visit.body or not visit.is_text:
        return visit
    text = visit.text()
    if "json" in visit.content_type:
        text = json.dumps(_drop_history(json.loads(text)))
    else:
        text = HISTORY_PANEL.sub("", text)
        text = PAYLOAD_SCRIPT.sub(
            lambda m: m.group(1) + json.dumps(_drop_history(json.loads(m.group(2)))) + m.group(3),
            text,
        )
    return dataclasses.replace(visit, body=text.encode())


def test_a_case_read_with_and_without_its_clinical_history_differs_only_by_the_history(
    crawled, db
):
    world, crawl, trials = crawled
    by_trial = defaultdict(list)
    shown = defaultdict(list)
    for visit in crawl.visits:
        if visit.trial:
            shown[visit.trial].append(visit.text())
            by_trial[visit.trial].append((visit.step, normalized(_without_history(visit), case_fields=False)))
    by_case = defaultdict(dict)
    for trial in trials:
        if trial.kind == Trial.Kind.MAIN and trial.arm.kind == "unaided":
            by_case[trial.case_id][trial.arm.shows_clinical_history] = trial
    assert len(by_case) == StudyCase.objects.filter(study=crawl.study, role="main").count()
    for pair in by_case.values():
        with_history, without = str(pair[True].uid), str(pair[False].uid)
        text = clinical_history(pair[True].case)
        assert any("Clinical history</h2>" in body and text in body for body in shown[with_history])
        assert not any("clinical" in body.lower() for body in shown[without])
        assert len(by_trial[with_history]) == len(by_trial[without]) > 5
        for (step, one), (_, other) in zip(by_trial[with_history], by_trial[without], strict=True):
            assert one == other, f"{step}: reading with the clinical history differs beyond it"


def test_a_similar_case_that_is_a_case_of_the_study_is_shown_without_its_label(crawled, db):
    """The engine draws similar cases from the collection, which may hold the study's own
    cases: their label would be the ground truth of a case the reader reads."""
    world, crawl, _ = crawled
    study_cases = world.study_thumbnails[crawl.study.pk]
    labels = {}  # (trial, index) -> label shown
    for visit in crawl.visits:
        if (
            visit.trial
            and visit.status == 200
            and ("json" in visit.content_type or PAYLOAD_SCRIPT.search(visit.text()))
        ):
            payload = _payload(visit)
            for index, shown in enumerate(payload.get("similar_cases") or []):
                labels[(visit.trial, index)] = shown["label"]
    shown = [
        v for v in crawl.visits if re.search(r"/files/similar-\d+$", v.path) and v.status == 200
    ]
    assert shown, "the similar-cases arm shows cases"
    of_the_study = [v for v in shown if v.body in study_cases]
    assert of_the_study, "the references of this data include cases of the study"
    for visit in of_the_study:
        label = labels[(visit.trial, int(visit.path.rsplit("-", 1)[1]))]
        assert label == "unknown", f"{visit.path}: a case of the study is shown as {label!r}"
    others = {
        labels[(v.trial, int(v.path.rsplit("-", 1)[1]))] for v in shown if v not in of_the_study
    }
    assert others and others <= {"nodule", "no nodule"}


def test_training_feedback_appears_only_after_a_training_trial(crawled, db):
    _, crawl, trials = crawled
    training = {str(t.uid) for t in trials if t.kind == Trial.Kind.TRAINING}
    assert training
    feedback_seen = False
    for visit in crawl.visits:
        if visit.trial is None or visit.status != 200:
            continue
        if "json" in visit.content_type or PAYLOAD_SCRIPT.search(visit.text()):
            payload = _payload(visit)
            if "feedback" not in payload:
                continue
            if visit.trial in training and payload["state"] == "done":
                assert payload["feedback"] is not None
                feedback_seen = True
            else:
                assert payload["feedback"] is None, f"{visit.step} of {visit.path}"
    assert feedback_seen


def test_the_errors_a_reader_causes_are_refusals_not_failures(crawled, db):
    _, crawl, _ = crawled
    statuses = defaultdict(set)
    for visit in crawl.visits:
        statuses[visit.step].add(visit.status)
    failures = [
        f"{v.method} {v.path} ({v.step}): {v.status}" for v in crawl.visits if v.status >= 500
    ]
    assert not failures, failures
    refused = [
        "empty answer",
        "not JSON",
        "invalid answers",
        "unknown stage",
        "a second final answer",
        "reveal when done",
        "answer, closed study",
        "reveal, closed study",
        "consent to an old version",
        "consent without a version",
    ]
    assert {step: statuses[step] for step in refused} == {step: {400} for step in refused}
    assert statuses["reveal before the first answer"] == {400}
    if crawl.study.protocol == Study.Protocol.TWO_STAGE:
        assert statuses["final answer before the reveal"] == {400}
        assert statuses["reveal again"] == {200}  # idempotent
    # never servable; the overlay and similar cases not before the AI output is revealed
    names = ["similar-99", "heatmap", "normalized", "thumbnail", "mask.png", "..%2Fpixels"]
    if crawl.study.protocol == Study.Protocol.TWO_STAGE:
        names += ["overlay", "similar-0"]
    for name in names:
        assert statuses[f"shown: guessed file {name}"] == {404}, name
    assert statuses["closed study"] <= {200, 302, 400, 404, 410}  # 400: the reading API's refusal
