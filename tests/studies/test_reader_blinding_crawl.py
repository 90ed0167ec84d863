"""A reader reads two whole studies through the HTTP endpoints their browser uses, and nothing
that reaches them unblinds the study.

The studies (one read in one stage, one in two stages) are open, fully crossed, with every
kind of arm: unaided, AI only, AI with a real Grad-CAM, AI with a placebo Grad-CAM, and AI with
similar cases; their predictions and explanations are computed by the real engine on the demo
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
* a similar case that is also a case of the study is shown without its label (it would be
  that case's ground truth), and training feedback appears only after a training trial.
"""

from __future__ import annotations

import json
import re
import struct
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.contrib.staticfiles import finders
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.test import Client, TestCase, override_settings

from core.permissions import COORDINATORS_GROUP
from explain.compute.catalog import EXPLAINERS
from explain.explainer_requests import ALIASES
from explain.models import ClassifierModel, Explanation, Prediction
from library.imaging import pixel_transfer
from library.models import Case, CaseLabel, Collection
from studies import services
from studies.models import Arm, Study, StudyCase, Trial
from studies.selectors import BLINDED_KIND, case_truth

ARM_CODES = {
    ("unaided", ""): "QZUN",
    ("ai", ""): "QZAI",
    ("ai_explainer", "gradcam"): "QZEX",
    ("placebo", "gradcam"): "QZPL",
    ("ai_explainer", "similar_cases"): "QZSC",
}
PROTOCOLS = ("single_stage", "two_stage")
XRS_HEADER_KEYS = {"shape", "dtype", "slope", "intercept", "filter", "codec", "size"}
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
URL_ATTRIBUTE = re.compile(r'(?:href|src|action|data-[\w-]*url)\s*=\s*"([^"]*)"')
PAYLOAD_SCRIPT = re.compile(
    r'(<script id="trial-payload" type="application/json">)(.*?)(</script>)', re.S
)
CSRF = re.compile(r'(data-csrf-token="|name="csrfmiddlewaretoken" value=")[^"]*')
NONCE = re.compile(r"nonce(=\"|-)[^\"' ;]+")
ANSWERS = {
    "diagnosis": None,
    "confidence": 70,
    "likert": 4,
    "free_text": "looked at the whole image",
}
# Words that would give away the ground truth or the AI's correctness.
TRUTH_WORDS = [
    "ai_wrong",
    "ai_right",
    "ai-wrong",
    "ground truth",
    "ground_truth",
    "stratum",
    "strata",
    "correct",
    "incorrect",
    "wrong",
]
PNG_IMAGE_CHUNKS = {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"sRGB", b"pHYs", b"bKGD"}


# The studies ------------------------------------------------------------------------------


@dataclass
class World:
    reader: User
    coordinator: User
    studies: dict  # protocol -> Study
    forbidden: list  # (token, what it is)
    study_thumbnails: dict  # study pk -> {thumbnail bytes of its cases}
    media: Path = None


def _user(username: str, *, coordinator: bool = False) -> User:
    user = User.objects.create_user(username=username, email=f"{username}@example.org")
    if coordinator:
        user.groups.add(Group.objects.get_or_create(name=COORDINATORS_GROUP)[0])
    return user


def _choose_cases(collection: Collection) -> dict:
    """Main cases of both labels from both splits (the train split is the similar-case
    explainer's reference set), one training and one attention-check case."""

    def positive(case):
        return CaseLabel.objects.filter(case=case, name="nodule", value=1).exists()

    cases = list(collection.cases.order_by("pk"))
    main = []
    for split in ("test", "train"):
        for wanted in (True, False):
            main.append(
                next(
                    c for c in cases if c.split == split and positive(c) == wanted and c not in main
                )
            )
    rest = [c for c in cases if c not in main]
    return {"main": [c.pk for c in main], "training": [rest[0].pk], "attention": [rest[1].pk]}


def _build(dataset: Path, tmp: Path) -> World:
    from library import services as library_services
    from tests.explain.engine_fixtures import register_demo_architecture

    coordinator = _user("coordinator", coordinator=True)
    reader = _user("reader_a")
    report = library_services.cases_import(
        acting_user=coordinator,
        collection="crawl-cases",
        paths=[dataset / "images"],
        labels_path=dataset / "labels.csv",
    )
    assert report.ok, report.to_dict()
    collection = Collection.objects.get(name="crawl-cases")
    model = register_demo_architecture(tmp, name="crawl-net")
    assert model.explainers["similar_cases"]["supported"]
    chosen = _choose_cases(collection)
    studies = {}
    for protocol in PROTOCOLS:
        study = services.study_create(
            acting_user=coordinator,
            title=f"QZINTERNALTITLE{len(studies) + 1} nodule protocol",
            description=f"QZPROTOCOLTEXT{len(studies) + 1}: unaided vs AI vs placebo heatmaps",
            reader_title=f"Chest reading QZREADERTITLE{len(studies) + 1}",
            reader_description="QZREADERTEXT: decide whether each radiograph shows a nodule.",
            model=model,
            collections=[collection],
            consent_text="I agree to take part.",
            instructions="Say whether there is a nodule.",
            design="fully_crossed",
            protocol=protocol,
            sessions=len(ARM_CODES),
        )
        for kind, explainer in ARM_CODES:
            services.arm_add(acting_user=coordinator, study=study, kind=kind, explainer=explainer)
        for arm in study.arms.all():  # codes that can be searched for (A-E are single letters)
            Arm.objects.filter(pk=arm.pk).update(code=ARM_CODES[(arm.kind, arm.explainer)])
        services.questions_add_defaults(acting_user=coordinator, study=study)
        services.study_cases_set(acting_user=coordinator, study=study, **chosen)
        services.study_role_add(acting_user=coordinator, study=study, user=reader, role="reader")
        with TestCase.captureOnCommitCallbacks(execute=True):
            services.study_precompute(acting_user=coordinator, study=study)
        studies[protocol] = services.study_open(acting_user=coordinator, study=study)
    assert Explanation.objects.filter(placebo=True, overlay_file__gt="").exists()
    assert Explanation.objects.exclude(similar_cases=[]).exists()
    thumbnails = {}
    for study in studies.values():
        ids = study.study_cases.values_list("case_id", flat=True)
        thumbnails[study.pk] = {
            default_storage.open(c.thumbnail_file.name).read()
            for c in Case.objects.filter(pk__in=ids)
        }
    return World(reader, coordinator, studies, _forbidden(model), thumbnails)


def _forbidden(model: ClassifierModel) -> list[tuple[str, str]]:
    """Every string that names an explainer, an arm, a file or a case, with what it is."""
    tokens = []
    for name, info in EXPLAINERS.items():
        if name == "similar_cases":
            # every payload has a `similar_cases` list and every trial page a "Similar cases"
            # box (hidden unless the arm shows some): the word names no arm
            continue
        tokens += [
            (name, "explainer"),
            (name.replace("_", " "), "explainer"),
            (name.replace("_", "-"), "explainer"),
        ]
        tokens.append((re.sub(r"\s*\(.*\)", "", info.label), "explainer label"))
    tokens += [
        (alias, "explainer alias")
        for alias, name in ALIASES.items()
        if len(alias) >= 4 and name != "similar_cases"
    ]
    # "AI" and "unaided" are what the reader sees anyway (the AI box; the unaided first stage)
    tokens += [(kind, "arm kind") for kind in Arm.Kind.values if kind not in ("ai", "unaided")]
    tokens += [(BLINDED_KIND, "arm kind")] if BLINDED_KIND != "explanation" else []
    for arm in Arm.objects.all():
        tokens.append((arm.code, "arm code"))
        if arm.param_hash:
            tokens += [(arm.param_hash, "parameter hash"), (arm.param_hash[:10], "parameter hash")]
    for explanation in Explanation.objects.all():
        tokens += [(explanation.param_hash[:10], "parameter hash")]
        for file in (
            explanation.overlay_file,
            explanation.heatmap_file,
            explanation.normalized_file,
        ):
            if file.name:
                tokens.append((file.name, "explanation file"))
    for case in Case.objects.all():
        tokens += [
            (case.key, "case key"),
            (case.source_sha256, "case digest"),
            (case.stored_sha256, "case digest"),
        ]
        for file in (case.display_file, case.pixels_file, case.thumbnail_file):
            if file.name:
                tokens += [(file.name, "case file"), (Path(file.name).name, "case file")]
    tokens += [(model.name, "model name"), (model.file_sha256, "model digest")]
    for study in Study.objects.all():  # the protocol's own words; readers see the reader-facing ones
        tokens += [(study.title, "internal title"), (study.description, "internal description")]
        tokens += [(word, "internal title") for word in re.findall(r"QZ[A-Z]+\d*", study.title)]
        tokens += [(word, "internal description") for word in re.findall(r"QZ[A-Z]+\d*", study.description)]
    tokens += [(word, "truth") for word in TRUTH_WORDS]
    unique = {token.lower(): what for token, what in tokens if token}
    return sorted(unique.items())


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


# The crawl --------------------------------------------------------------------------------


@dataclass
class Visit:
    method: str
    path: str
    status: int
    headers: dict
    cookies: dict
    body: bytes
    trial: str | None  # the trial being read when the request was made
    step: str

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")

    @property
    def is_text(self) -> bool:
        return self.content_type.startswith(("text/", "application/json")) or not self.body

    def text(self) -> str:
        return self.body.decode("utf-8") if self.is_text else ""


@dataclass
class Crawl:
    client: Client
    study: Study
    visits: list = field(default_factory=list)
    found: set = field(default_factory=set)  # every URL seen in a response
    trial: str | None = None

    def request(
        self, method: str, path: str, step: str, *, data=None, form=False, raw: bytes | None = None
    ):
        if method == "GET":
            response = self.client.get(path)
        elif form:
            response = self.client.post(path, data=data or {})
        elif raw is not None:
            response = self.client.post(path, data=raw, content_type="application/json")
        else:
            response = self.client.post(
                path, data=json.dumps(data or {}), content_type="application/json"
            )
        body = b"".join(response.streaming_content) if response.streaming else response.content
        visit = Visit(
            method,
            path,
            response.status_code,
            dict(response.items()),
            {name: morsel.value for name, morsel in response.cookies.items()},
            body,
            self.trial,
            step,
        )
        self.visits.append(visit)
        self.found.update(urls_in(visit))
        return visit

    def get(self, path, step):
        return self.request("GET", path, step)

    def post(self, path, step, data=None, **kwargs):
        return self.request("POST", path, step, data=data, **kwargs)


def urls_in(visit: Visit) -> set[str]:
    found = set()
    if "Location" in visit.headers:
        found.add(visit.headers["Location"])
    text = visit.text()
    if "html" in visit.content_type:
        found.update(URL_ATTRIBUTE.findall(text))
        script = PAYLOAD_SCRIPT.search(text)
        if script:
            found.update(_json_urls(json.loads(script.group(2))))
    elif "json" in visit.content_type:
        found.update(_json_urls(json.loads(text)))
    return {url for url in found if url and not url.startswith("#")}


def _json_urls(value) -> set[str]:
    if isinstance(value, dict):
        return set().union(*(_json_urls(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_json_urls(v) for v in value)) if value else set()
    if isinstance(value, str) and (value.startswith("/") or "://" in value):
        return {value}
    return set()


def _payload(visit: Visit) -> dict:
    if "html" in visit.content_type:
        return json.loads(PAYLOAD_SCRIPT.search(visit.text()).group(2))
    body = json.loads(visit.text())
    return body.get("payload", body)


def _answers(payload: dict, *, valid: bool = True) -> dict:
    answers = {}
    for question in payload["questions"]:
        value = ANSWERS[question["kind"]]
        if question["kind"] == "diagnosis":
            value = question["options"][0]
        answers[question["key"]] = value
    if not valid:
        answers = {**dict.fromkeys(answers, "not an answer"), "no_such_question": 1}
    return answers


def _answer(crawl: Crawl, urls: dict, payload: dict, step: str) -> dict:
    """Submit the stage's answers as the page does, with a replay of the same submit."""
    body = {
        "stage": payload["stage"],
        "answers": _answers(payload),
        "client_key": str(uuid.uuid4()),
        "interactions": {"window_changes": 2, "viewer_ms": 5000},
    }
    done = crawl.post(urls["answer"], step, body)
    assert done.status == 200, done.text()
    again = crawl.post(urls["answer"], step + " (replayed)", body)
    assert again.status == 200 and json.loads(again.text()) == json.loads(done.text())
    return _payload(done)


def _files(crawl: Crawl, payload: dict, step: str) -> None:
    for key in ("pixels_url", "display_url"):
        assert crawl.get(payload["image"][key], f"{step}: {key}").status == 200
    if payload["overlay_url"]:
        assert crawl.get(payload["overlay_url"], f"{step}: overlay").status == 200
    for index, similar in enumerate(payload["similar_cases"]):
        assert crawl.get(similar["url"], f"{step}: similar {index}").status == 200


def _probe_files(crawl: Crawl, trial_url: str, step: str) -> None:
    """Files the reader may guess: explanation files not shown yet, the engine's other result
    files, names that are not files."""
    for name in GUESSED_FILES:
        crawl.get(f"{trial_url}files/{name}", f"{step}: guessed file {name}")


GUESSED_FILES = (
    "overlay",
    "similar-0",
    "similar-99",
    "heatmap",
    "normalized",
    "thumbnail",
    "mask.png",
    "..%2Fpixels",
)


def _new_key() -> str:
    return str(uuid.uuid4())


def read_trial(crawl: Crawl) -> Trial | None:
    """Read the next trial the way the trial page does, with the errors a reader can cause."""
    start = crawl.get(f"/read/{crawl.study.pk}/next/", "next")
    if start.status != 302 or "/read/trials/" not in start.headers["Location"]:
        return None
    trial_url = start.headers["Location"]
    crawl.trial = UUID.search(trial_url).group(0)
    page = crawl.get(trial_url, "trial page")
    assert page.status == 200, page.text()[:500]
    urls = dict(re.findall(r'data-(\w+)-url="([^"]*)"', page.text()))
    payload = _payload(page)
    assert crawl.get(urls["payload"], "payload").status == 200
    _files(crawl, payload, "shown")
    _probe_files(crawl, trial_url, "shown")
    crawl.post(urls["answer"], "empty answer", {})
    crawl.post(urls["answer"], "not JSON", raw=b"{not json")
    invalid = {
        "stage": payload["stage"],
        "answers": _answers(payload, valid=False),
        "client_key": _new_key(),
    }
    crawl.post(urls["answer"], "invalid answers", invalid)
    crawl.post(
        urls["answer"], "unknown stage", {"stage": "third", "answers": {}, "client_key": _new_key()}
    )
    crawl.post(urls["reveal"], "reveal before the first answer", {})
    if payload["stage"] == "first":
        final_too_early = {"stage": "final", "answers": {}, "client_key": _new_key()}
        payload = _answer(crawl, urls, payload, "first answer")
        crawl.post(urls["answer"], "final answer before the reveal", final_too_early)
        _probe_files(crawl, trial_url, "first answered")
        revealed = crawl.post(urls["reveal"], "reveal", {})
        assert revealed.status == 200, revealed.text()
        crawl.post(urls["reveal"], "reveal again", {})
        payload = _payload(revealed)
        _files(crawl, payload, "revealed")
        _probe_files(crawl, trial_url, "revealed")
        assert crawl.get(trial_url, "trial page, revealed").status == 200
    payload = _answer(crawl, urls, payload, "final answer")
    assert payload["stage"] is None
    again = {"stage": "final", "answers": {}, "client_key": _new_key()}
    crawl.post(urls["answer"], "a second final answer", again)
    crawl.post(urls["reveal"], "reveal when done", {})
    crawl.get(trial_url, "trial page, done")
    crawl.get(urls["payload"], "payload, done")
    _files(crawl, payload, "done")
    follow(crawl, "links of the trial")
    trial = Trial.objects.select_related("arm", "case").get(uid=crawl.trial)
    crawl.trial = None
    return trial


def follow(crawl: Crawl, step: str) -> None:
    """GET every URL found so far that stays in the reader's area and was not requested yet
    (not the next-trial redirect, which moves the reader on, nor logging out)."""
    requested = {(v.method, v.path) for v in crawl.visits}
    for url in sorted(crawl.found):
        if url.startswith("/static/") or url.endswith("/next/") or url == "/accounts/logout/":
            continue
        if url.startswith("/api/v1/reading/") and url.endswith(("/answer/", "/reveal/")):
            continue  # POST only: requested by the trial flow
        if not url.startswith("/") or "://" in url:
            continue  # reported by the URL check
        if ("GET", url) not in requested:
            crawl.get(url, step)


def crawl_study(world: World, protocol: str) -> tuple[Crawl, list[Trial]]:
    client = Client()
    client.force_login(world.reader)
    study = world.studies[protocol]
    crawl = Crawl(client, study)
    crawl.get("/", "home")
    crawl.get("/read/", "reading home")
    consent = crawl.get(f"/read/{study.pk}/", "consent page")
    assert b"consent_version" in consent.body
    assert study.reader_title.encode() in consent.body and b"QZREADERTEXT" in consent.body
    crawl.post(
        f"/read/{study.pk}/", "consent to an old version", {"consent_version": "0"}, form=True
    )
    crawl.post(f"/read/{study.pk}/", "consent without a version", {"x": "1"}, form=True)
    version = {"consent_version": str(study.consent_version)}
    agreed = crawl.post(f"/read/{study.pk}/", "consent", version, form=True)
    assert agreed.status == 302
    crawl.get(f"/read/{study.pk}/", "study page")
    trials = []
    while (trial := read_trial(crawl)) is not None:
        trials.append(trial)
        crawl.get(f"/read/{study.pk}/", "study page")
    crawl.get("/read/", "reading home, finished")
    follow(crawl, "links")
    # the study closes: every URL the reader knows answers without saying more
    services.study_close(acting_user=world.coordinator, study=study)
    for path in sorted({v.path for v in crawl.visits if v.method == "GET"}):
        crawl.get(path, "closed study")
    last = trials[-1]
    closed = {"stage": "final", "answers": {}, "client_key": _new_key()}
    crawl.post(f"/api/v1/reading/trials/{last.uid}/answer/", "answer, closed study", closed)
    crawl.post(f"/api/v1/reading/trials/{last.uid}/reveal/", "reveal, closed study", {})
    return crawl, trials


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


def _normalize_json(value, *, case_fields: bool):
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if case_fields and key in {
                "rows",
                "columns",
                "value_min",
                "value_max",
                "presets",
                "modality",
            }:
                out[key] = "<image>"
            elif case_fields and key == "ai" and isinstance(item, dict):
                out[key] = dict.fromkeys(item, "<ai>")
            elif case_fields and key == "similar_cases":
                out[key] = "<similar cases>"  # how many there are varies with the case
            elif key in {"position", "session", "trials_in_session"}:
                out[key] = "<position>"
            else:
                out[key] = _normalize_json(item, case_fields=case_fields)
        return out
    if isinstance(value, list):
        return [_normalize_json(item, case_fields=case_fields) for item in value]
    if isinstance(value, str):
        return _normalize_text(value)
    return value


def _normalize_text(text: str) -> str:
    text = UUID.sub("<uuid>", text)
    text = CSRF.sub(r"\1<csrf>", text)
    text = NONCE.sub("nonce<nonce>", text)
    return re.sub(r"\d+", "#", text)


def normalized(visit: Visit, *, case_fields: bool) -> tuple:
    headers = {
        name: ("<varies>" if name in {"Content-Length", "ETag", "Date"} else _normalize_text(value))
        for name, value in visit.headers.items()
    }
    if "/files/" in visit.path and visit.status == 200:
        body = "<file>"
    elif "json" in visit.content_type:
        data = _normalize_json(json.loads(visit.text()), case_fields=case_fields)
        body = json.dumps(data, sort_keys=True)
    elif "html" in visit.content_type:
        text = visit.text()
        script = PAYLOAD_SCRIPT.search(text)
        if script:
            data = _normalize_json(json.loads(script.group(2)), case_fields=case_fields)
            text = (
                text[: script.start(2)]
                + "<payload>"
                + text[script.end(2) :]
                + json.dumps(data, sort_keys=True)
            )
        body = _normalize_text(text)
        if case_fields:
            body = re.sub(r"Case # of #", "Case", body)
    else:
        body = _normalize_text(visit.text())
    return (
        visit.method,
        _normalize_text(visit.path),
        visit.status,
        tuple(sorted(headers.items())),
        tuple(sorted(visit.cookies)),
        body,
    )


def _transcripts(crawl: Crawl, *, case_fields: bool) -> dict[str, list]:
    by_trial = defaultdict(list)
    for visit in crawl.visits:
        if visit.trial:
            by_trial[visit.trial].append((visit.step, normalized(visit, case_fields=case_fields)))
    return by_trial


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
