"""Issue 14's statistician journey in Debian's chromium: a statistician assigned to a study that
is already closed signs in through the login form, lands on a home that lists the studies they
analyse (not "no studies to read"), reveals the arms (recorded), builds an unblinded report and
opens it; a site admin who tries the reveal is told how to become the statistician instead.

Before issue 14 the statistician's home said "You have no studies to read yet" with no link to
the study, a closed study could not be given a statistician, and the site admin got a bare 403.
"""

from __future__ import annotations

import pytest

from analysis.models import StudyReport
from core.models import AuditEntry
from studies import services
from studies.models import Study
from tests.analysis.conftest import finished_study  # noqa: F401  (fixture)
from tests.studies.conftest import (  # noqa: F401  (fixtures)
    draft_study,
    ready_study,
    study_collection,
    study_model,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _sign_in(page, base_url: str, user) -> None:
    page.goto(f"{base_url}/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", "pw-" + user.username)
    with page.expect_navigation():
        page.get_by_role("button", name="Log in").click()


def test_a_statistician_of_a_closed_study_finds_it_reveals_its_arms_and_builds_a_report(
    live_server, new_page, finished_study, coordinator, statistician, eager, artifacts_dir  # noqa: F811
):
    study = services.study_close(acting_user=coordinator, study=finished_study)
    assert study.status == Study.Status.CLOSED
    services.study_role_add(acting_user=coordinator, study=study, user=statistician, role="statistician")

    page = new_page(viewport=(1280, 800))
    _sign_in(page, live_server.url, statistician)
    main = page.locator("main").inner_text()
    assert "no studies to read" not in main
    assert "Studies you analyse" in main and study.title in main
    page.screenshot(path=str(artifacts_dir / "statistician-home.png"), full_page=True)

    with page.expect_navigation():
        page.get_by_role("link", name="Reveal the arms").click()
    with page.expect_navigation():
        page.get_by_role("button", name="Reveal and record").click()
    revealed = page.locator("main table").inner_text()
    assert "gradcam" in revealed and "placebo" in revealed.lower()
    assert AuditEntry.objects.filter(study_id=study.pk, action="study.arms_reveal").count() == 1

    page.goto(f"{live_server.url}/")
    with page.expect_navigation():
        page.get_by_role("link", name="Reports").first.click()
    with page.expect_navigation():
        page.get_by_test_id("report-request-unblinded").click()
    report = StudyReport.objects.get(study=study)
    assert report.status == StudyReport.Status.DONE, report.error
    page.reload()
    with page.expect_navigation():
        page.get_by_role("link", name="report (HTML)").click()
    assert "gradcam" in page.content().lower()  # unblinded: the arms are named


def test_a_site_admin_is_told_how_to_unblind_instead_of_a_bare_refusal(
    live_server, new_page, finished_study, coordinator, site_admin  # noqa: F811
):
    study = services.study_close(acting_user=coordinator, study=finished_study)
    page = new_page(user=site_admin, base_url=live_server.url)
    response = page.goto(f"{live_server.url}/studies/{study.pk}/reveal/")
    assert response.status == 403
    text = page.locator("main").inner_text()
    assert "statistician" in text and "People" in text
    assert not AuditEntry.objects.filter(study_id=study.pk, action="study.arms_reveal").exists()
