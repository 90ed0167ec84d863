"""The report's layout: tables that fit the page (every column header in the PDF's text), a
forest plot whose labels do not overlap and whose caption names degenerate intervals, the
reading-time model in plain words, and the trials that showed an empty explanation."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import replace
from html import unescape

import numpy as np
import pytest

from analysis import report_tables
from analysis.report import render_html, render_pdf
from analysis.report_figures import build_figure, draw_forest, forest_spec
from analysis.report_format import TABLE_BUDGET_EM, split_columns, table
from analysis.stats.empty_explanations import empty_explanation_counts
from analysis.stats.proportions import wilson
from analysis.stats.reading_time import MODEL_WORDS, ModelAttempt, model_note
from analysis.stats.reads import Read
from analysis.stats.study import ArmMeta, analyse_study
from explain.compute.heatmaps import EMPTY_RULE
from tests.analysis.test_intervals import perfect
from tests.analysis.test_study_analysis import blind_meta, synthetic_metrics, synthetic_reads
from tests.conftest import require_service

PDFTOTEXT = shutil.which("pdftotext")
RAW_WARNINGS = ("ConvergenceWarning", "MLE may be on the boundary", "Retrying MixedLM",
                "Maximum Likelihood optimization failed", "Gradient optimization failed",
                "Hessian")


@pytest.fixture(scope="module")
def full():
    """Every kind of table: two-stage reading, metrics, ratings, times, empty explanations."""
    reads = with_empty(synthetic_reads())
    analysis = analyse_study(reads, blind_meta(n_bootstrap=100, empty_rule=EMPTY_RULE),
                             metrics=synthetic_metrics(reads))
    return reads, analysis, render_html(analysis, generated_at="now", versions={"numpy": "1"})


@pytest.fixture(scope="module")
def report(full):
    return full[1:]


def section(html: str, name: str) -> str:
    start = html.index(f'<section id="{name}">')
    return html[start:html.index("</section>", start)]


def table_headers(html: str) -> list[list[str]]:
    return [[unescape(h) for h in re.findall(r"<th>(.*?)</th>", t, re.S)]
            for t in re.findall(r"<table>(.*?)</table>", html, re.S)]


# ----------------------------------------------------------------------------- tables


def test_a_table_too_wide_for_the_page_is_split_and_keeps_every_column():
    header = ["arm"] + [f"measure {k}" for k in range(8)]
    rows = [[f"Arm {c}: AI prediction and explanation"]
            + [("0.123 (12/60)", "0.456 to 0.789")] * 8 for c in "ABC"]
    html = table(header, rows, caption="Wide")
    parts = table_headers(html)
    assert len(parts) >= 2
    assert all(p[0] == "arm" for p in parts)
    assert [h for p in parts for h in p[1:]] == header[1:]
    assert "Wide (part 1 of" in html
    assert split_columns([10.0, 30.0, 30.0, 5.0], budget=45) == [[1], [2, 3]]


def test_an_empty_note_column_is_left_out():
    html = table(["arm", "value", "note"], [["A", "1", ""], ["B", "2", ""]])
    assert table_headers(html) == [["arm", "value"]]
    assert "note" in table_headers(table(["arm", "note"], [["A", "why"]]))[0]


def test_the_pdf_shows_every_column_header_of_every_table(report):
    require_service("pdftotext", PDFTOTEXT is not None, "apt-get install poppler-utils; `make test` does")
    _, html = report
    headers = table_headers(html)
    assert len(headers) > 30
    captions = " ".join(re.findall(r"<caption>(.*?)</caption>", html))
    for kind in ("Reliance measures", "Explanation metric versus per-case gain",
                 "Main trials that showed an empty explanation", "Agreement of each reader",
                 "Differences between arms, RRFC", "Ratio of geometric mean times"):
        assert kind in captions, kind
    counter = iter(range(len(headers)))
    marked = re.sub(r'<div class="table">',
                    lambda _m: f'<p>QQT{next(counter)}QQ</p><div class="table">', html)
    pdf = render_pdf(marked)
    text = subprocess.run([PDFTOTEXT, "-raw", "-", "-"], input=pdf, capture_output=True,
                          check=True).stdout.decode()
    chunks = re.split(r"QQT(\d+)QQ", text)
    found = {int(chunks[i]): chunks[i + 1] for i in range(1, len(chunks), 2)}
    assert sorted(found) == list(range(len(headers)))
    for i, header in enumerate(headers):
        words = set(found[i].split())
        for name in header:
            missing = [w for w in name.split() if w not in words]
            assert not missing, (i, header, name)
    boxes = subprocess.run([PDFTOTEXT, "-bbox", "-", "-"], input=pdf, capture_output=True,
                           check=True).stdout.decode()
    width = float(re.search(r'<page width="([\d.]+)"', boxes).group(1))
    right = [float(x) for x in re.findall(r'xMax="([\d.]+)"', boxes)]
    assert right and max(right) <= width - 20  # inside the right margin (14 mm = 40 pt)


def test_the_reliance_table_keeps_all_its_measures_within_the_width_budget(report):
    _, html = report
    rel = table_headers(section(html, "reliance"))
    measures = {h for t in rel for h in t}
    assert {"RAIR", "RSR", "over-reliance", "under-reliance", "switch rate"} <= measures
    assert TABLE_BUDGET_EM < 58.6  # A4 minus 2 x 14 mm at the 8.8 pt table font


# ----------------------------------------------------------------------------- forest plot


def overlaps(fig) -> list[tuple[str, str]]:
    """Pairs of visible tick labels (all axes) whose rendered boxes intersect."""
    renderer = fig.canvas.get_renderer()

    def drawn(labels, limits, index):
        low, high = sorted(limits)
        slack = 1e-9 * (high - low)
        return [t for t in labels if t.get_visible() and t.get_text()
                and low - slack <= t.get_position()[index] <= high + slack]

    boxes = [(t.get_text(), t.get_window_extent(renderer)) for ax in fig.axes
             for t in drawn(ax.get_xticklabels(), ax.get_xlim(), 0)
             + drawn(ax.get_yticklabels(), ax.get_ylim(), 1)]
    out = []
    for i, (a, box_a) in enumerate(boxes):
        for b, box_b in boxes[i + 1:]:
            width = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)
            height = min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
            if width > 0.5 and height > 0.5:
                out.append((a, b))
    return out


def crossed_reads(n_arms: int, n_readers: int = 4, n_cases: int = 24, seed: int = 2):
    rng = np.random.default_rng(seed)
    arms = [chr(ord("A") + k) for k in range(n_arms)]
    reads = []
    for r in range(n_readers):
        for c in range(n_cases):
            truth = c % 2 == 0
            for k, arm in enumerate(arms):
                score = (1 if truth else -1) * (0.8 + 0.15 * k) + rng.normal()
                reads.append(Read(f"r{r}", f"c{c}", arm, truth=truth,
                                  final_positive=bool(score > 0),
                                  final_confidence=float(round(50 + 15 * score))))
    return arms, reads


def draw(analysis):
    spec = forest_spec(analysis)
    assert spec is not None
    return spec, build_figure(lambda fig: draw_forest(fig, analysis, spec), width=spec.width,
                              height=spec.height)


def test_forest_tick_labels_do_not_overlap_with_many_comparisons_and_long_labels():
    arms, reads = crossed_reads(6)
    meta = blind_meta(design="fully_crossed", protocol="single_stage", n_bootstrap=20,
                      arms=tuple(ArmMeta(a, f"Condition {a} with a rather long descriptive name",
                                         a != "A", a > "B") for a in arms))
    spec, fig = draw(analyse_study(reads, meta))
    assert len(spec.rows) == 15
    assert all(max(len(line) for line in label.split("\n")) <= 24 for label in spec.labels)
    assert overlaps(fig) == []
    assert "zero" not in spec.caption


def test_forest_with_zero_width_intervals_says_so_and_keeps_labels_apart():
    analysis = analyse_study(perfect(synthetic_reads(), arms=("A", "B", "C", "D")),
                             blind_meta(n_bootstrap=20))
    spec, fig = draw(analysis)
    assert overlaps(fig) == []
    assert "AUC difference: all 6 comparisons have standard error 0" in spec.caption
    assert "open diamond without a bar" in spec.caption
    assert "Every reader has the same AUC within Arm A (1.000), Arm B (1.000)" in spec.caption
    lo, hi = fig.axes[0].get_xlim()
    assert hi - lo >= 0.1  # a readable window, not a collapsed axis


def test_forest_caption_names_only_the_degenerate_comparisons():
    analysis = analyse_study(perfect(synthetic_reads()), blind_meta(n_bootstrap=20))
    spec, fig = draw(analysis)
    assert "comparisons have standard error 0" not in spec.caption
    # three arms at AUC 1.000 with per-arm SE 0: named, although their differences have an SE
    assert "Every reader has the same AUC within Arm B (1.000), Arm C (1.000) and Arm D " \
           "(1.000)" in spec.caption
    assert overlaps(fig) == []


# ----------------------------------------------------------------------------- reading time


LEVELS = {
    "crossed": (),
    "ols": (ModelAttempt("crossed", False, "failed (Singular matrix)"),),
}


@pytest.mark.parametrize("level", list(LEVELS))
def test_reading_time_heading_and_text_agree_for_the_model_used(report, level):
    analysis, _ = report
    section_ = analysis.reading_time
    attempts = LEVELS[level] + (ModelAttempt(level, True),)
    res = replace(section_.result.model, model=level, attempts=attempts, zero_variances=(),
                  model_note=model_note(level, attempts, 15),
                  optimizer_warnings=("The MLE may be on the boundary of the parameter space.",
                                      "Retrying MixedLM optimization with lbfgs"))
    changed = replace(analysis, reading_time=replace(
        section_, result=replace(section_.result, model=res)))
    html = report_tables.reading_time(changed, "")
    caption = re.search(r"<caption>(Ratio of geometric mean times.*?)</caption>", html).group(1)
    assert caption.endswith(f"({MODEL_WORDS[level]})")
    assert html.count("Reported:") == 1
    assert f"Reported: {MODEL_WORDS[level]}." in html
    for failed in LEVELS[level]:
        assert f"{MODEL_WORDS[failed.model]} failed (Singular matrix)" in html
    assert "15 warnings" in html
    assert ("Variance components of log time" in html) == (level == "crossed")
    for text in RAW_WARNINGS:
        assert text not in html


def test_a_variance_at_zero_is_named_in_the_note_and_marked_in_the_components(report):
    analysis, _ = report
    section_ = analysis.reading_time
    model = section_.result.model
    attempts = (ModelAttempt("crossed", True),)
    res = replace(model, model="crossed", attempts=attempts, zero_variances=("reader",),
                  variance_components={"reader": 0.0, "case": 0.0192},
                  residual_variance=0.0858,
                  model_note=model_note("crossed", attempts, 0, ("reader",)))
    changed = replace(analysis, reading_time=replace(
        section_, result=replace(section_.result, model=res)))
    html = report_tables.reading_time(changed, "")
    assert "The reader variance is estimated at 0 (a singular fit, as lme4 reports it)" in html
    components = html[html.index("Variance components of log time"):]
    rows = re.findall(r"<tr>(.*?)</tr>", components, re.S)
    cells = [[unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)] for r in rows]
    cells = [c for c in cells if c]
    assert cells == [["reader", "0.0000", "0.0000", "0: singular fit"],
                     ["case", "0.0192", "0.1386", ""],
                     ["residual", "0.0858", "0.2929", ""]]


def test_the_report_prints_no_raw_optimizer_warning(report):
    analysis, html = report
    model = analysis.reading_time.result.model
    for text in RAW_WARNINGS:
        assert text not in html
    time = section(html, "reading_time")
    assert f"({MODEL_WORDS[model.model]})</caption>" in time
    assert f"Used here: {MODEL_WORDS[model.model]}." in section(html, "methods")
    assert "fitted by REML as lme4's lmer fits it" in unescape(section(html, "methods"))


# ----------------------------------------------------------------------------- empty maps


EMPTY_CASES = {"case02", "case05", "case11", "case17", "case23", "case31", "case38"}


def with_empty(reads, empty_cases=EMPTY_CASES):
    """Arms C and D show heatmaps; arm C's maps of ``empty_cases`` are empty."""
    return [replace(r, explanation_empty=(r.arm == "C" and r.case in empty_cases))
            if r.arm in ("C", "D") else r for r in reads]


@pytest.fixture(scope="module")
def empty_report(full):
    return full


def test_empty_explanation_trials_are_counted_per_heatmap_arm(empty_report):
    reads, analysis, _ = empty_report
    counts = {c.arm: c for c in analysis.counts.result.empty_explanations}
    assert set(counts) == {"C", "D"}
    main_c = [r for r in reads if r.kind == "main" and r.arm == "C"]
    empty_c = [r for r in main_c if r.explanation_empty]
    assert (counts["C"].heatmap_trials, counts["C"].empty_trials) == (len(main_c), len(empty_c))
    assert counts["D"].empty_trials == 0
    kept = [r for r in main_c if not r.explanation_empty]
    right = sum(r.final_positive == r.truth for r in kept)
    assert counts["C"].accuracy_without_empty == wilson(right, len(kept))
    assert counts["C"].accuracy.total == len(main_c)


def test_the_report_states_the_empty_explanations_the_rule_and_the_sensitivity(empty_report):
    reads, analysis, html = empty_report
    c = next(x for x in analysis.counts.result.empty_explanations if x.arm == "C")
    counts = section(html, "counts")
    assert "Main trials that showed an empty explanation" in counts
    assert f'<td class="n">{c.empty_trials}</td>' in counts
    kept = c.accuracy_without_empty
    assert (f"Arm C: AI prediction and explanation: {c.accuracy.estimate:.3f} "
            f"({c.accuracy.successes}/{c.accuracy.total}) over all its main trials, "
            f"{kept.estimate:.3f} ({kept.successes}/{kept.total}) without the "
            f"{c.empty_trials} that showed an empty explanation") in counts
    assert "Arm D: AI prediction and explanation: 0" not in counts  # no line for arm D
    assert EMPTY_RULE.replace("'", "&#x27;") in section(html, "methods")


def test_without_empty_explanations_there_is_no_sensitivity_line():
    reads = with_empty(synthetic_reads(), empty_cases=set())
    analysis = analyse_study(reads, blind_meta(n_bootstrap=20))
    html = report_tables.counts(analysis)
    assert "No main trial showed an empty explanation." in html
    assert "Sensitivity analysis" not in html
    plain = analyse_study(synthetic_reads(), blind_meta(n_bootstrap=20))
    assert plain.counts.result.empty_explanations == ()
    assert "empty explanation" not in report_tables.counts(plain)
    assert empty_explanation_counts(reads)[0].empty_trials == 0
