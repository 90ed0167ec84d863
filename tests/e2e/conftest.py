"""Shared fixtures of the browser tests: Debian's chromium driven by Playwright for Python.

The browser is /usr/bin/chromium launched through `executable_path` (never `playwright install`).
Artifacts (screenshots, timings) go to var/test-artifacts/ (git-ignored), or to the folder the
environment variable XRS_TEST_ARTIFACTS names.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def browser():
    """One chromium per test module.

    Playwright's sync API keeps an asyncio loop registered as running in the main thread while it
    is open, which makes Django refuse ORM calls there (SynchronousOnlyOperation), including the
    database flush after a transactional test. The ORM calls of these tests are ordinary
    synchronous ones, so that check is off exactly while the browser is open; the loop stops when
    the module ends, so later tests use the ORM normally."""
    from playwright.sync_api import sync_playwright

    with pytest.MonkeyPatch.context() as patch, sync_playwright() as p:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where the tests leave screenshots and timings for people to look at."""
    folder = Path(os.environ.get("XRS_TEST_ARTIFACTS") or REPO_ROOT / "var" / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def new_page(browser):
    """new_page(viewport=(w, h), user=None, base_url=None): a page in a fresh browser context,
    optionally signed in as `user` on the live server at `base_url` (a session cookie made by
    Django's test client; no login form). JavaScript errors on the page fail the test."""
    contexts = []
    errors: list[str] = []

    def _new(*, viewport=(1280, 900), user=None, base_url=None):
        context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
        contexts.append(context)
        if user is not None:
            from django.conf import settings
            from django.test import Client

            client = Client()
            client.force_login(user)
            context.add_cookies(
                [
                    {
                        "name": settings.SESSION_COOKIE_NAME,
                        "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                        "url": base_url,
                    }
                ]
            )
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        return page

    yield _new
    for context in contexts:
        context.close()
    assert errors == [], errors
