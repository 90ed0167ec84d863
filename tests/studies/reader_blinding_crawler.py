"""The reader blinding crawl itself (test_reader_blinding_crawl.py): the reader's requests, the
URLs found in the responses, and reading every trial of a study as the trial page does."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field

from django.test import Client

from studies import services
from studies.models import Study, Trial
from tests.studies.reader_blinding_world import ANSWERS, PAYLOAD_SCRIPT, URL_ATTRIBUTE, UUID, World

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
