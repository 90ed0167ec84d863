"""A reader's trial page on the live server gets XRS pixels and windows the full-precision values.

The study is test_csp's: the demo images imported through the real import (which writes the XRS
pixels file), a two-stage study with Grad-CAM, reader_a enrolled.
"""

from __future__ import annotations

import pytest

from library.imaging import pixel_transfer
from tests.e2e.test_csp import csp_study  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_the_trial_viewer_loads_the_xrs_pixels_and_shows_full_precision_values(
    live_server,
    csp_study,  # noqa: F811
    reader_a,
    new_page,
):
    page = new_page(user=reader_a, base_url=live_server.url)
    pixel_bodies = []
    page.on(
        "response",
        lambda response: (
            pixel_bodies.append(response) if response.url.endswith("/files/pixels") else None
        ),
    )
    page.goto(f"{live_server.url}/read/{csp_study.pk}/")
    page.get_by_role("button", name="I agree").click()
    page.wait_for_load_state("networkidle")
    page.get_by_role("link", name="Start").click()
    page.wait_for_url("**/read/trials/**")
    page.locator("body[data-viewer-ready='1']").wait_for(timeout=20_000)
    assert len(pixel_bodies) == 1
    response = pixel_bodies[0]
    assert response.status == 200
    assert pixel_transfer.is_encoded(response.body())
    assert response.headers["content-type"] == "application/octet-stream"
    assert "content-encoding" not in response.headers
    # windowed from the decoded values, not the 8-bit display PNG
    assert page.locator(".xrs-viewer").get_attribute("data-mode") == "values"
    assert not page.get_by_test_id("viewer-fallback").is_visible()
