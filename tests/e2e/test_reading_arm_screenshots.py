"""Reading in chromium: the trial pages of every arm are screenshotted and timed and do not name
the condition.

The study and helpers are in reading_helpers.py.
"""

from __future__ import annotations

import difflib
import json
import re
import statistics

import pytest

from tests.e2e import reading_helpers
from tests.e2e.reading_helpers import (
    ARM_NAMES,
    FULL_HD,
    LAPTOP,
    LOAD_BOUND_S,
    MAIN_CASES,
    READY_TIMER_JS,
    UID,
    UNBLINDING,
    assert_png,
    load_times,
    read_by_service,
    schedule,
    trial_url,
    wait_ready,
    wait_stage_heading,
    write_timings,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# The fixtures of reading_helpers.py.
reading_study = reading_helpers.reading_study
consented_reader = reading_helpers.consented_reader


def normalised_html(page) -> str:
    """The page's HTML without what differs on every page view (trial uid, CSRF token)."""
    html = UID.sub("<uid>", page.content())
    html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', 'name="csrfmiddlewaretoken"', html)
    return re.sub(r'data-csrf-token="[^"]*"', 'data-csrf-token="<csrf>"', html)


def html_differences(one: str, other: str) -> list[str]:
    """The words that differ between two pages."""
    words = re.compile(r"[\w%.-]+")
    a, b = words.findall(one), words.findall(other)
    changed = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag != "equal":
            changed += a[i1:i2] + b[j1:j2]
    return changed


def test_trial_pages_of_every_arm_are_screenshotted_timed_and_do_not_name_the_condition(
    live_server, consented_reader, new_page, artifacts_dir
):
    """Every trial is loaded (first visit and two reloads; AI arms again at the final stage, with
    the AI output), screenshotted at its final stage, and its HTML searched for the condition."""
    shots = artifacts_dir / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    page = new_page(viewport=FULL_HD, user=consented_reader, base_url=live_server.url)
    page.add_init_script(READY_TIMER_JS)
    loads, html, saved = [], {}, []
    for trial in schedule(consented_reader):
        name = ARM_NAMES[trial.arm.code]
        url = trial_url(live_server, trial)
        page.goto(url)  # the first visit (files not cached yet), then two reloads
        loads.append({"arm": name, "stage": "first visit", **load_times(page)})
        for _ in range(2):
            page.reload()
            loads.append({"arm": name, "stage": "reload", **load_times(page)})
        if trial.arm.shows_ai:  # the unaided answer and the reveal, then the final stage
            read_by_service(consented_reader, trial, until="final")
            page.reload()
            loads.append({"arm": name, "stage": "final", **load_times(page)})
            page.locator("[data-ai]").wait_for(state="visible")
        page.wait_for_function(
            "() => [...document.querySelectorAll('img')].every((img) => img.complete && img.naturalWidth > 0)"
        )
        wait_stage_heading(page, "Your final answer" if trial.arm.shows_ai else "Your answer")
        html[f"{trial.position}-{name}"] = normalised_html(page)
        if trial.kind == "main":
            path = shots / f"trial-{name}-{FULL_HD[0]}x{FULL_HD[1]}.png"
            page.screenshot(path=str(path))
            saved.append((path, FULL_HD))
            if trial.arm.code == "B":
                small = new_page(viewport=LAPTOP, user=consented_reader, base_url=live_server.url)
                small.goto(url)
                wait_ready(small)
                small.locator("[data-ai]").wait_for(state="visible")
                path = shots / f"trial-{name}-{LAPTOP[0]}x{LAPTOP[1]}.png"
                small.screenshot(path=str(path))
                saved.append((path, LAPTOP))
        read_by_service(consented_reader, trial)

    for path, size in saved:
        assert_png(path, size)
    assert sorted(p.name for p, _ in saved) == sorted(
        [f"trial-{name}-1920x1080.png" for name in ARM_NAMES.values()]
        + ["trial-ai-gradcam-1366x768.png"]
    )
    assert len(html) == MAIN_CASES + 1
    for key, text in html.items():  # "similar_cases" is also a key of every trial's payload
        found = UNBLINDING.search(text.replace('"similar_cases": [', "["))
        assert found is None, (key, text[found.start() - 200 : found.end() + 200])
    # The real and the placebo heatmap pages differ only in what depends on the case.
    (real,) = [text for key, text in html.items() if key.endswith("-ai-gradcam")]
    (placebo,) = [text for key, text in html.items() if key.endswith("-placebo-gradcam")]
    differences = html_differences(real, placebo)
    assert differences, "two different cases should not give identical pages"
    assert not [word for word in differences if UNBLINDING.search(word)], differences
    assert not {"B", "D", "arm-B", "arm-D"} & set(differences), differences

    summary = {}
    for name in ARM_NAMES.values():
        ready = [load["ready_ms"] for load in loads if load["arm"] == name]
        summary[name] = {
            "loads": len(ready),
            "median_ms": round(statistics.median(ready), 1),
            "max_ms": round(max(ready), 1),
        }
    write_timings(artifacts_dir, "trial_page_load", {"per_arm": summary, "loads": loads})
    print("trial page load, navigation start -> viewer ready:", json.dumps(summary))
    slow = [load for load in loads if load["ready_ms"] >= LOAD_BOUND_S * 1000]
    assert not slow, slow
