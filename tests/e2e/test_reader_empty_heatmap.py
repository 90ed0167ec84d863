"""Issue 14: a heatmap that highlights no region, in the browser. The trial page loads no
overlay, shows no heatmap toggle, shows a neutral "No region highlighted" note where the overlay
controls would be, asks no question about the highlighted region (and the final answer is stored
without one), and looks the same for the real and the placebo Grad-CAM arm.

Uses the study of tests/e2e/reading_helpers.py (arms: unaided, AI + Grad-CAM, AI + similar cases,
AI + placebo Grad-CAM), with every precomputed map marked empty."""

from __future__ import annotations

import re

import pytest

from explain.models import Explanation
from studies.models import Arm, Response
from tests.e2e import reading_helpers
from tests.e2e.reading_helpers import (
    choose_diagnosis,
    loaded_files,
    read_by_service,
    schedule,
    slide_confidence,
    submit,
    trial_url,
    wait_ready,
    wait_saved,
    wait_stage_heading,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# The fixtures of reading_helpers.py: its study, and reader_a enrolled and consented.
reading_study = reading_helpers.reading_study
consented_reader = reading_helpers.consented_reader

LAPTOP_800 = (1280, 800)
NUMBERS = re.compile(r"\d+%?")
# The viewer's toolbar, without the window presets (the case's file brings its own).
TOOLBAR_JS = """(toolbar) => [...toolbar.children]
  .filter((child) => !child.hidden && !child.classList.contains("xrs-presets"))
  .map((child) => child.textContent.trim()).filter(Boolean)"""


def empty_state(page) -> dict:
    """What the page shows about the heatmap, without what depends on the case."""
    note = page.locator("[data-overlay-empty]")
    return {
        "note": note.inner_text() if note.count() else None,
        "note_visible": note.count() == 1 and note.is_visible(),
        "toggle_visible": page.get_by_test_id("viewer-overlay-toggle").is_visible(),
        "toolbar": page.locator(".xrs-toolbar").evaluate(TOOLBAR_JS),
        "panel": NUMBERS.sub("#", page.locator(".trial-panel").inner_text()),
        "questions": page.locator("[data-question]").evaluate_all(
            "(boxes) => boxes.map((box) => box.dataset.question)"
        ),
        "overlay_loaded": "overlay" in loaded_files(page),
    }


def test_an_empty_heatmap_shows_a_neutral_note_alike_for_real_and_placebo(
    live_server, reading_study, consented_reader, new_page, artifacts_dir
):
    Explanation.objects.filter(model=reading_study.model).update(highlighted_fraction=0.0)
    page = new_page(viewport=LAPTOP_800, user=consented_reader, base_url=live_server.url)
    states = {}
    for trial in schedule(consented_reader):
        if not trial.arm.shows_heatmap or trial.arm.kind in states:
            read_by_service(consented_reader, trial)
            continue
        read_by_service(consented_reader, trial, until="final")
        page.goto(trial_url(live_server, trial))
        wait_ready(page)
        wait_stage_heading(page, "Your final answer")
        page.locator("[data-overlay-empty]").wait_for(state="visible")
        states[trial.arm.kind] = empty_state(page)
        name = "real" if trial.arm.kind == Arm.Kind.AI_EXPLAINER else "placebo"
        page.screenshot(path=str(artifacts_dir / "screenshots" / f"empty-heatmap-{name}.png"))
        choose_diagnosis(page, "nodule")
        slide_confidence(page, 10)
        for key in ("clarity", "usefulness", "trust"):
            page.locator(f"label[for=q-{key}-3]").click()
        submit(page)  # no region question: nothing more is demanded
        wait_saved(page)
        final = Response.objects.get(trial=trial, stage="final")
        assert "region_agreement" not in final.answers and final.answers["trust"] == 4
    real, placebo = states[Arm.Kind.AI_EXPLAINER], states[Arm.Kind.PLACEBO]
    assert real["note"] == "No region highlighted" and real["note_visible"]
    assert "No region highlighted" in real["toolbar"]  # where the overlay controls would be
    assert not real["toggle_visible"] and not real["overlay_loaded"]
    assert real["questions"] == ["diagnosis", "confidence", "clarity", "usefulness", "trust"]
    assert real == placebo
