"""The Content Security Policy in a real browser: the app's pages, as a coordinator and as a
reader, cause no CSP violation in Debian's chromium, and what they do still works under it (the
trial viewer renders, the API docs start, the invitation link selects itself on focus).

A violation is caught two ways: a `securitypolicyviolation` listener installed before any page
script runs, and chromium's console messages ("Refused to ... Content Security Policy").
"""

from __future__ import annotations

import pytest

from analysis import services as analysis_services
from analysis.models import StudyReport
from explain.models import PrecomputeJob, Prediction
from studies import services
from studies.models import Enrollment
from tests.analysis.conftest import finished_study  # noqa: F401  (fixture)
from tests.explain.engine_fixtures import import_demo_collection, register_demo_architecture
from tests.studies.conftest import (  # noqa: F401  (fixtures)
    draft_study,
    ready_study,
    study_collection,
    study_model,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

MAIN_CASES = 2

WATCH_JS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(
    `${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber} ${e.sample}`
  );
});
"""

CANVAS_LIT_JS = """async () => {
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  const canvas = document.querySelector("[data-testid=viewer-canvas]");
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let lit = 0;
  for (let i = 0; i < data.length; i += 4) if (data[i] + data[i + 1] + data[i + 2] > 30) lit += 1;
  return {lit, width: canvas.width, height: canvas.height};
}"""


@pytest.fixture
def csp_study(coordinator, reader_a, demo_dataset, tmp_path, eager):
    """A real, open two-stage study on the demo images (Grad-CAM precomputed) with reader_a
    enrolled but not yet consented."""
    collection = import_demo_collection(demo_dataset, name="csp")
    model = register_demo_architecture(tmp_path, name="csp-net")
    study = services.study_create(
        acting_user=coordinator, title="CSP study", model=model, collections=[collection],
        consent_text="I agree.", protocol="two_stage", sessions=1,
    )
    services.arm_add(acting_user=coordinator, study=study, kind="ai_explainer", explainer="gradcam")
    services.arm_add(acting_user=coordinator, study=study, kind="unaided")
    services.questions_add_defaults(acting_user=coordinator, study=study)
    services.study_cases_select(acting_user=coordinator, study=study, main_count=MAIN_CASES)
    services.study_precompute(acting_user=coordinator, study=study)
    services.study_open(acting_user=coordinator, study=study)
    services.study_role_add(acting_user=coordinator, study=study, user=reader_a, role="reader")
    assert Prediction.objects.filter(model=model).count() == MAIN_CASES
    return study


@pytest.fixture
def built_report(coordinator, finished_study, eager):  # noqa: F811
    report = analysis_services.report_request(acting_user=coordinator, study=finished_study)
    report.refresh_from_db()
    assert report.status == StudyReport.Status.DONE, report.error
    return report


class Watched:
    """A page whose CSP violations are collected, and a visit that asserts there were none."""

    def __init__(self, page, base_url: str):
        self.page = page
        self.base_url = base_url
        self.console: list[str] = []
        page.add_init_script(WATCH_JS)
        page.on("console", self._console)

    def _console(self, message) -> None:
        if "Content Security Policy" in message.text or "Refused to" in message.text:
            self.console.append(f"{self.page.url}: {message.text}")

    def visit(self, path: str, *, policy: str = "default-src 'self'"):
        response = self.page.goto(self.base_url + path)
        assert response is not None and response.ok, (path, response and response.status)
        assert policy in response.headers.get("content-security-policy", ""), path
        self.page.wait_for_load_state("networkidle")
        self.check(path)
        return response

    def check(self, where: str) -> None:
        violations = self.page.evaluate("window.__cspViolations")
        assert violations == [], (where, violations)
        assert self.console == [], (where, self.console)


def test_the_coordinators_pages_cause_no_csp_violation(
    live_server, csp_study, coordinator, new_page, mailoutbox
):
    page = Watched(new_page(user=coordinator, base_url=live_server.url), live_server.url)
    study = csp_study
    collection = study.collections.get()
    case = collection.cases.order_by("pk").first()
    job = PrecomputeJob.objects.filter(model=study.model).order_by("pk").first()
    paths = [
        "/studies/", f"/studies/{study.pk}/", f"/studies/{study.pk}/edit/", f"/studies/{study.pk}/cases/",
        f"/studies/{study.pk}/arms/", f"/studies/{study.pk}/questions/", f"/studies/{study.pk}/readiness/",
        f"/studies/{study.pk}/progress/", f"/studies/{study.pk}/responses/", f"/studies/{study.pk}/reports/",
        f"/studies/{study.pk}/audit/", "/library/", f"/library/collections/{collection.pk}/",
        f"/library/models/{study.model.pk}/", "/library/precompute/", f"/library/precompute/{job.pk}/",
    ]
    for path in paths:
        page.visit(path)

    # The case page shows its image.
    page.visit(f"/library/cases/{case.pk}/")
    assert page.page.evaluate("document.querySelector('img.case-image').naturalWidth") > 0

    # The invitation link, shown once, selects itself on focus (a static script, no inline handler).
    page.visit(f"/studies/{study.pk}/people/")
    page.page.fill("#id_email", "invited@example.org")
    page.page.get_by_role("button", name="Invite").click()
    link = page.page.locator("input[data-select-on-focus]")
    link.wait_for()
    link.focus()
    selected = page.page.evaluate(
        "() => { const f = document.querySelector('input[data-select-on-focus]');"
        " return [f.selectionStart, f.selectionEnd, f.value.length]; }"
    )
    assert selected[0] == 0 and selected[1] == selected[2] > 20
    page.check("the people page after inviting")
    assert len(mailoutbox) == 1


def test_the_api_docs_start_under_the_policy(live_server, coordinator, new_page):
    page = Watched(new_page(user=coordinator, base_url=live_server.url), live_server.url)
    page.visit("/api/docs/")
    page.page.locator(".swagger-ui .info .title", has_text="xai-reader-study API").wait_for(timeout=20_000)
    assert page.page.locator(".swagger-ui .opblock").count() > 10  # the operations are listed
    page.check("the API docs after they rendered")


def test_the_readers_pages_cause_no_csp_violation_and_the_viewer_renders(
    live_server, csp_study, reader_a, new_page
):
    page = Watched(new_page(user=reader_a, base_url=live_server.url), live_server.url)
    page.visit("/read/")
    page.visit(f"/read/{csp_study.pk}/")  # the consent page
    page.page.get_by_role("button", name="I agree").click()
    page.page.wait_for_load_state("networkidle")
    page.check("after consenting")
    assert Enrollment.objects.get(study=csp_study, reader=reader_a).consented_at is not None
    page.page.get_by_role("link", name="Start").click()
    page.page.wait_for_url("**/read/trials/**")
    # (a selector, not wait_for_function with a string: Playwright would need eval to poll it)
    page.page.locator("body[data-viewer-ready='1']").wait_for(timeout=20_000)
    drawn = page.page.evaluate(CANVAS_LIT_JS)
    assert drawn["width"] > 0 and drawn["lit"] > 100, drawn
    page.page.wait_for_load_state("networkidle")
    page.check("the trial page with the viewer")


def test_the_sign_in_page_and_a_built_report_cause_no_csp_violation(
    live_server, coordinator, built_report, new_page
):
    page = Watched(new_page(), live_server.url)
    page.visit("/accounts/login/")
    page.page.fill("#id_username", "coordinator")
    page.page.fill("#id_password", "pw-coordinator")
    page.page.get_by_role("button", name="Log in").click()
    page.page.wait_for_url(f"{live_server.url}/")  # the home: the studies by role
    page.page.wait_for_load_state("networkidle")
    assert "Studies you coordinate" in page.page.locator("main").inner_text()
    page.check("after signing in")
    page.visit(f"/studies/{built_report.study_id}/reports/")
    # The report itself is self-contained, under its own policy (inline style, data: images only).
    response = page.visit(f"/reports/{built_report.uid}/files/html", policy="default-src 'none'")
    assert response.headers["content-type"].startswith("text/html")
    assert page.page.locator("h1").count() == 1
    images = page.page.evaluate("Array.from(document.images).map((i) => i.naturalWidth)")
    assert images and all(width > 0 for width in images)
