"""The Content Security Policy: every HTML page carries it, and no template (nor any page as
rendered) holds inline script, inline style or event-handler attributes that it would block."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from analysis.models import StudyReport
from explain.models import PrecomputeJob
from studies import services
from studies.models import Enrollment, Trial
from tests.studies.conftest import (  # noqa: F401  (fixtures)
    draft_study,
    open_study,
    ready_study,
    study_collection,
    study_model,
)

ROOT = Path(__file__).resolve().parents[2]

# What a policy of script-src 'self' (+ nonce) and style-src 'self' blocks in markup.
INLINE = {
    "inline script": re.compile(r"<script\b(?![^>]*\bsrc\s*=)(?![^>]*type=\"application/json\")[^>]*>", re.I),
    "inline style element": re.compile(r"<style\b", re.I),
    "style attribute": re.compile(r"<[a-z][^>]*\sstyle\s*=", re.I),
    "event-handler attribute": re.compile(r"<[a-z][^>]*\son[a-z]+\s*=", re.I),
    "javascript: URL": re.compile(r"""(?:href|src|action)\s*=\s*["']?\s*javascript:""", re.I),
}


def inline_problems(markup: str) -> list[str]:
    return [f"{what}: {match.group(0)[:120]}" for what, rx in INLINE.items() for match in rx.finditer(markup)]


def template_files() -> list[Path]:
    folders = [Path(folder) for engine in settings.TEMPLATES for folder in engine.get("DIRS", [])]
    folders += [ROOT / app / "templates" for app in ("core", "explain", "studies", "analysis")]
    return sorted(path for folder in folders if folder.is_dir() for path in folder.rglob("*.html"))


def test_the_scanner_finds_what_the_policy_blocks():
    for markup in (
        "<script>alert(1)</script>", '<div style="color:red">', "<style>p{}</style>",
        '<input onfocus="this.select()">', '<a href="javascript:void(0)">', "<BUTTON ONCLICK='x()'>",
    ):
        assert inline_problems(markup), markup
    for markup in (
        '<script src="/static/x.js" defer></script>', '<script id="p" type="application/json">{}</script>',
        '<input data-select-on-focus aria-label="one=two">', "<p>a style=guide, on=off</p>",
    ):
        assert not inline_problems(markup), markup


def test_no_template_holds_inline_script_style_or_event_handlers():
    files = template_files()
    assert len(files) > 30  # the scan sees the project's templates
    problems = {
        str(path.relative_to(ROOT)): found for path in files if (found := inline_problems(path.read_text()))
    }
    assert problems == {}


def test_the_policy_allows_no_inline_script_or_style():
    directives = settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]
    for name in ("default-src", "script-src", "style-src"):
        assert not any("unsafe" in str(source) for source in directives[name]), name
    assert "'self'" in directives["style-src"] and "'self'" in directives["script-src"]


# Every page, as rendered ----------------------------------------------------------------------


def _patterns(patterns, namespace=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            if entry.namespace == "admin":
                continue  # Django's own admin: a few of its pages are visited below
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _patterns(entry.url_patterns, inner)
        elif isinstance(entry, URLPattern) and entry.name:
            yield namespace + entry.name, list(entry.pattern.converters)


@pytest.fixture
def world(request, coordinator, reader_a):
    """One of everything a URL can name: an open study with an enrolled, consented reader, a
    draft study with an arm, a question and an invitation, a precompute job and a report."""
    opened = request.getfixturevalue("open_study")
    model = request.getfixturevalue("study_model")
    collection = request.getfixturevalue("study_collection")
    draft = services.study_create(acting_user=coordinator, title="Draft", model=model,
                                  collections=[collection])
    arm = services.arm_add(acting_user=coordinator, study=draft, kind="unaided")
    question = services.question_add(acting_user=coordinator, study=draft, key="diagnosis", kind="diagnosis",
                                      text="Diagnosis?")
    invitation, token = services.invitation_create(acting_user=coordinator, study=draft, email="x@example.org")
    enrollment = services.reader_enroll(acting_user=coordinator, study=opened, reader=reader_a)
    from studies.services.reading import enrollment_consent

    enrollment_consent(acting_user=reader_a, enrollment=enrollment, consent_version=opened.consent_version)
    trial = Trial.objects.filter(session__enrollment=enrollment).order_by("session__index", "position").first()
    job = PrecomputeJob.objects.create(model=model, collection=collection, configs=[])
    report = StudyReport.objects.create(study=opened, status=StudyReport.Status.FAILED, error="x")
    assert Enrollment.objects.filter(reader=reader_a).exists()
    return {
        "study_id": draft.pk, "arm_id": arm.pk, "question_id": question.pk, "invitation_id": invitation.pk,
        "token": token, "collection_id": collection.pk, "case_id": collection.cases.first().pk,
        "model_id": model.pk, "job_id": job.pk, "trial_uid": trial.uid, "report_uid": report.uid,
        "open_study_id": opened.pk, "name": "image", "kind": "html", "code": arm.code,
    }


def _get_every_page(client: Client, world: dict) -> dict[str, int]:
    checked: dict[str, int] = {}
    problems: dict[str, list[str]] = {}
    for name, params in _patterns(get_resolver().url_patterns):
        if any(param not in world for param in params):
            continue
        kwargs = {param: world[param] for param in params}
        for variant in ({}, {"study_id": world["open_study_id"]} if "study_id" in params else None):
            if variant is None:
                continue
            url = reverse(name, kwargs={**kwargs, **variant})
            response = client.get(url)
            if not response.get("Content-Type", "").startswith("text/html"):
                continue
            policy = response.get("Content-Security-Policy", "")
            body = b"".join(response.streaming_content) if response.streaming else response.content
            if name == "analysis:report-file" and response.status_code == 200:  # its own, stricter policy
                assert policy.startswith("default-src 'none'"), policy
                continue
            if "default-src 'self'" not in policy or "style-src 'self'" not in policy:
                problems.setdefault(url, []).append(f"policy: {policy!r}")
            found = inline_problems(body.decode("utf-8", "replace"))
            if found:
                problems.setdefault(url, []).extend(found)
            checked[url] = response.status_code
    assert problems == {}
    return checked


@pytest.mark.django_db
def test_every_html_page_carries_the_policy_and_renders_nothing_inline(client, site_admin, reader_a, world):
    client.force_login(site_admin)
    as_admin = _get_every_page(client, world)
    for url in ("/admin/", "/admin/core/auditentry/", "/admin/studies/study/", "/api/docs/"):
        response = client.get(url)
        assert response.status_code == 200 and "default-src 'self'" in response["Content-Security-Policy"]
        assert inline_problems(response.content.decode()) == [], url
    reader = Client()
    reader.force_login(reader_a)
    as_reader = _get_every_page(reader, world)
    anonymous = _get_every_page(Client(), world)
    pages_200 = {url for checked in (as_admin, as_reader, anonymous) for url, status in checked.items()
                 if status == 200}
    for required in (
        "/accounts/login/", f"/studies/{world['open_study_id']}/", f"/studies/{world['study_id']}/people/",
        f"/studies/{world['study_id']}/audit/", f"/library/cases/{world['case_id']}/",
        f"/library/models/{world['model_id']}/", f"/library/precompute/{world['job_id']}/",
        f"/studies/{world['open_study_id']}/reports/", f"/read/trials/{world['trial_uid']}/",
    ):
        assert required in pages_200, required
    assert len(pages_200) > 30
    # Error pages carry it too (a reader opening a coordinator page).
    assert any(status == 404 for status in as_reader.values())


@pytest.mark.django_db
def test_the_api_docs_load_their_start_up_script_from_a_url(client):
    page = client.get("/api/docs/")
    assert page.status_code == 200
    match = re.search(rb'<script src="([^"]*\?[^"]*script[^"]*)"', page.content)
    assert match, page.content
    script = client.get(match.group(1).decode().replace("&amp;", "&"))
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert b"SwaggerUIBundle" in script.content
