"""Shared by the e2e reading tests (test_reading_*.py): the real two-stage study they read, its
consented reader, and the helpers that drive and inspect the reading page in chromium.

Screenshots and load timings are left in var/test-artifacts/ (or $XRS_TEST_ARTIFACTS).
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pytest
from PIL import Image

from explain.models import Explanation, Prediction
from studies import services
from studies.models import Enrollment, Response, Trial
from studies.selectors import questions_for, trial_stages
from studies.services.reading import enrollment_consent, trial_answer, trial_reveal, trial_show
from tests.explain.engine_fixtures import import_demo_collection, register_demo_architecture

MAIN_CASES = 4
FULL_HD = (1920, 1080)
LAPTOP = (1366, 768)
LOAD_BOUND_S = 3.0  # generous: the goal is under 1 s
READER_EMAIL = "new.reader@example.org"
READER_PASSWORD = "Lung-nodules-2026!"
ARM_NAMES = {"A": "unaided", "B": "ai-gradcam", "C": "ai-similar-cases", "D": "placebo-gradcam"}
# Words that would tell a reader which condition a trial belongs to.
UNBLINDING = re.compile(
    r"gradcam|grad-cam|placebo|saliency|similar_cases|explainer|ai_explainer|param_hash|\barm\b",
    re.IGNORECASE,
)
UID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

# Predicates are functions, not expression strings: under the Content Security Policy (no
# 'unsafe-eval') Playwright cannot evaluate a string while it polls.
VIEWER_READY = "() => document.body.dataset.viewerReady === '1'"

# Records, in milliseconds since navigation start, when the trial page says its viewer is ready.
READY_TIMER_JS = """
new MutationObserver(() => {
  if (window.__xrsReadyAt === undefined && document.body && document.body.dataset.viewerReady === "1") {
    window.__xrsReadyAt = performance.now();
  }
}).observe(document, {subtree: true, attributes: true, attributeFilter: ["data-viewer-ready"]});
"""

LOAD_TIMES_JS = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  return {ready_ms: window.__xrsReadyAt, response_end_ms: nav.responseEnd,
          dom_content_loaded_ms: nav.domContentLoadedEventEnd};
}"""

CANVAS_DIGEST_JS = """async () => {
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  const canvas = document.querySelector("[data-testid=viewer-canvas]");
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let r = 0, g = 0, b = 0, lit = 0;
  for (let i = 0; i < data.length; i += 4) {
    r += data[i]; g += data[i + 1]; b += data[i + 2];
    if (data[i] + data[i + 1] + data[i + 2] > 30) lit += 1;
  }
  return {r, g, b, lit, width: canvas.width, height: canvas.height};
}"""

READ_TEXT_AFTER_FRAME_JS = """async (testId) => {
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  return document.querySelector(`[data-testid=${testId}]`).textContent;
}"""

POST_JSON_JS = """async ([url, body]) => {
  const token = document.querySelector("[data-trial-page]").dataset.csrfToken;
  const response = await fetch(url, {
    method: "POST", credentials: "same-origin",
    headers: {"Content-Type": "application/json", "X-CSRFToken": token},
    body: JSON.stringify(body),
  });
  return {status: response.status, data: await response.json()};
}"""


# Building the study ---------------------------------------------------------------------------


@pytest.fixture
def reading_study(coordinator, demo_dataset, tmp_path, eager):
    collection = import_demo_collection(demo_dataset, name="reading")
    model = register_demo_architecture(tmp_path, name="reading-net")
    study = services.study_create(
        acting_user=coordinator,
        title="Lung nodule reading",
        model=model,
        collections=[collection],
        consent_text="I agree to take part in this reader study.",
        instructions="Read each case and answer the questions.",
        protocol="two_stage",
        design="latin_square",
        sessions=1,
    )
    services.arm_add(acting_user=coordinator, study=study, kind="unaided")
    services.arm_add(acting_user=coordinator, study=study, kind="ai_explainer", explainer="gradcam")
    services.arm_add(
        acting_user=coordinator, study=study, kind="ai_explainer", explainer="similar_cases"
    )
    services.arm_add(acting_user=coordinator, study=study, kind="placebo", explainer="gradcam")
    services.questions_add_defaults(acting_user=coordinator, study=study)
    services.study_cases_select(
        acting_user=coordinator, study=study, main_count=MAIN_CASES, training_count=1
    )
    services.study_precompute(acting_user=coordinator, study=study)
    services.study_open(acting_user=coordinator, study=study)
    assert list(study.arms.values_list("code", "kind", "explainer")) == [
        ("A", "unaided", ""),
        ("B", "ai_explainer", "gradcam"),
        ("C", "ai_explainer", "similar_cases"),
        ("D", "placebo", "gradcam"),
    ]
    assert Prediction.objects.filter(model=model).count() == MAIN_CASES + 1
    assert Explanation.objects.filter(model=model, placebo=True).count() == MAIN_CASES + 1
    return study


@pytest.fixture
def consented_reader(reading_study, coordinator, reader_a):
    """reader_a enrolled (through the reader role) and consented, with their trials in order."""
    services.study_role_add(
        acting_user=coordinator, study=reading_study, user=reader_a, role="reader"
    )
    enrollment = Enrollment.objects.get(study=reading_study, reader=reader_a)
    enrollment_consent(
        acting_user=reader_a, enrollment=enrollment, consent_version=reading_study.consent_version
    )
    return reader_a


def schedule(reader) -> list[Trial]:
    return list(
        Trial.objects.filter(session__enrollment__reader=reader)
        .select_related("arm", "session__enrollment__study")
        .order_by("session__index", "position")
    )


def service_answers(trial: Trial, stage: str) -> dict:
    study = trial.session.enrollment.study
    values = {"confidence": 60, "likert": 4, "free_text": "seen"}
    return {
        q.key: q.options[0] if q.kind == "diagnosis" else values[q.kind]
        for q in questions_for(study=study, trial=trial, stage=stage)
    }


def read_by_service(reader, trial: Trial, *, until: str = "done") -> Trial:
    """Go on reading a trial through the services, as the page would, from wherever it is: to
    'final' (AI revealed, the final answer still to give) or to 'done'."""
    study = trial.session.enrollment.study
    trial = trial_show(acting_user=reader, trial=Trial.objects.get(pk=trial.pk))
    if len(trial_stages(trial=trial, study=study)) == 2:
        if trial.state == Trial.State.SHOWN:
            trial_answer(
                acting_user=reader,
                trial=trial,
                stage="first",
                answers=service_answers(trial, "first"),
                client_key=uuid.uuid4(),
            )
        trial = trial_reveal(acting_user=reader, trial=Trial.objects.get(pk=trial.pk))
    if until == "done":
        trial_answer(
            acting_user=reader,
            trial=trial,
            stage="final",
            answers=service_answers(trial, "final"),
            client_key=uuid.uuid4(),
        )
    return Trial.objects.select_related("arm").get(pk=trial.pk)


# Page helpers ---------------------------------------------------------------------------------


def trial_url(live_server, trial: Trial) -> str:
    return f"{live_server.url}/read/trials/{trial.uid}/"


def current_trial(page) -> Trial:
    match = UID.search(urlparse(page.url).path)
    assert match, page.url
    return Trial.objects.select_related("arm", "session__enrollment__study").get(uid=match.group())


def wait_ready(page) -> None:
    page.wait_for_function(VIEWER_READY, timeout=15_000)


def load_times(page) -> dict:
    wait_ready(page)
    page.wait_for_function("() => window.__xrsReadyAt !== undefined")
    return page.evaluate(LOAD_TIMES_JS)


def loaded_files(page) -> list[str]:
    """The trial files the page has fetched so far (its resource timing entries)."""
    names = page.evaluate("performance.getEntriesByType('resource').map((e) => e.name)")
    return [urlparse(name).path.rsplit("/", 1)[-1] for name in names if "/files/" in name]


def file_status(page, trial: Trial, name: str) -> int:
    """What the server answers when the reader's browser asks for a file of the trial."""
    origin = "{0.scheme}://{0.netloc}".format(urlparse(page.url))
    return page.request.get(f"{origin}/read/trials/{trial.uid}/files/{name}").status


def canvas(page) -> dict:
    return page.evaluate(CANVAS_DIGEST_JS)


def readout(page, test_id: str) -> str:
    return page.evaluate(READ_TEXT_AFTER_FRAME_JS, test_id)


def ai_box_shown(page) -> bool:
    return page.locator("[data-ai]").is_visible()


def responses(trial: Trial) -> list[str]:
    return list(Response.objects.filter(trial=trial).order_by("pk").values_list("stage", flat=True))


def choose_diagnosis(page, label: str) -> None:
    page.locator("[data-question=diagnosis] label.choice", has_text=label).click()


def slide_confidence(page, steps: int) -> None:
    """Move the 0-100 slider with the keyboard: focus it, then arrow keys (each key is one step)."""
    slider = page.locator("[data-question=confidence] input[type=range]")
    slider.focus()
    for _ in range(abs(steps)):
        page.keyboard.press("ArrowRight" if steps > 0 else "ArrowLeft")
    assert slider.input_value() == str(50 + steps)
    assert page.locator("[data-question=confidence] output").inner_text() == str(50 + steps)


def answer_likert(page, keys: list[str]) -> None:
    """The first item by clicking a point, the others by keyboard (radio groups move with arrows)."""
    first, *others = keys
    page.locator(f"label[for=q-{first}-3]").click()
    for key in others:
        page.locator(f"#q-{key}-1").focus()
        page.keyboard.press("Space")
        page.keyboard.press("ArrowRight")  # selects point 3
        assert page.locator(f"#q-{key}-2").is_checked()


def submit(page) -> None:
    page.locator("[data-submit]").click()


def wait_stage_heading(page, text: str) -> None:
    exact = re.compile(f"^{re.escape(text)}$")
    page.locator("[data-stage-heading]", has_text=exact).wait_for()


def wait_saved(page) -> None:
    page.locator("[data-done]").wait_for(state="visible")


def write_timings(artifacts_dir: Path, key: str, value) -> None:
    path = artifacts_dir / "timings.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data[key] = value
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def assert_png(path: Path, size: tuple[int, int]) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 20_000, path
    with Image.open(path) as image:
        assert image.size == size
        colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
        assert colours is None or len(colours) > 200, (path, len(colours or []))


# The tests ------------------------------------------------------------------------------------
