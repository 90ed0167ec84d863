import base64
import json
import re
import sys
import zlib
from dataclasses import replace
from html import escape

import pytest

from analysis.report import render_html, render_pdf
from analysis.stats.study import analyse_study
from tests.analysis.test_study_analysis import (
    blind_meta,
    synthetic_metrics,
    synthetic_reads,
    unblinded_meta,
)

HEADINGS = (
    "Summary", "Study and methods", "Readers, cases and reads", "Data quality",
    "Sensitivity, specificity and accuracy", "ROC analysis (Obuchowski–Rockette)",
    "Accuracy (Obuchowski–Rockette)",
    "Accuracy by AI correctness (logistic mixed model)", "Reliance on the AI", "Agreement", "Likert ratings",
    "Reading time", "Explanation gain", "Subgroups by reader experience", "Software",
)
FIGURES = ("roc", "forest", "likert", "reliance", "metric_gain", "reading_time")
EXPLAINERS = ("GradientShapZebra", "OcclusionQuokka")
VERSIONS = {"numpy": "9.9.9-test", "weasyprint": "70.0"}


@pytest.fixture(scope="module")
def reports():
    reads = synthetic_reads()
    metrics = synthetic_metrics(reads)
    blind = analyse_study(reads, blind_meta(), metrics=metrics)
    unblinded = analyse_study(reads, unblinded_meta(), metrics=metrics)
    html = render_html(blind, generated_at="2030-01-02 03:04 UTC", versions=VERSIONS)
    return {
        "analysis": blind,
        "html": html,
        "unblinded_analysis": unblinded,
        "unblinded_html": render_html(unblinded, generated_at="2030-01-02 03:04 UTC",
                                      versions=VERSIONS),
        "pdf": render_pdf(html),
    }


@pytest.fixture(scope="module")
def degenerate():
    """One reader, single-stage, no ratings, times or experience: most sections have reasons."""
    reads = [replace(r, ratings={}, seconds=None, reader_experience=None, first_positive=None,
                     first_confidence=None)
             for r in synthetic_reads(two_stage=False) if r.reader == "r1"]
    analysis = analyse_study(reads, blind_meta(protocol="single_stage", n_bootstrap=50))
    return analysis, render_html(analysis, generated_at="now", versions={})


def headings(html):
    return re.findall(r"<h2>(.*?)</h2>", html)


def test_report_has_every_section_heading_in_order(reports):
    assert headings(reports["html"]) == [escape(h) for h in HEADINGS]


def test_report_embeds_every_figure_as_a_png(reports):
    html = reports["html"]
    assert html.count("<img") == len(FIGURES)
    for figure_id in FIGURES:
        match = re.search(rf'<figure id="fig-{figure_id}"><img src="data:image/png;base64,'
                          r'([A-Za-z0-9+/=]+)"', html)
        assert match, figure_id
        assert base64.b64decode(match.group(1)).startswith(b"\x89PNG\r\n\x1a\n")
    assert "Figure not drawn" not in html


def test_report_refers_to_nothing_outside_itself(reports):
    for html in (reports["html"], reports["unblinded_html"]):
        assert "http://" not in html and "https://" not in html
        targets = re.findall(r"""(?:src|href)\s*=\s*["']?([^"'\s>]*)""", html)
        assert targets and all(t.startswith("data:image/png;base64,") for t in targets)
        assert "<link" not in html and "<script" not in html and "@import" not in html


def test_methods_name_every_statistical_method(reports):
    html = reports["html"]
    methods = html[html.index('<section id="methods">'):html.index('<section id="counts">')]
    for phrase in ("Obuchowski–Rockette", "Hillis", "jackknife", "Wilson score", "Holm",
                   "Schemmer et al.", "Fleiss&#x27; kappa", "Gwet", "proportional-odds",
                   "reader-clustered", "linear mixed model on log", "crossed random intercepts",
                   "bootstrap over cases", "Newcombe", "Spearman"):
        assert phrase in methods, phrase


def test_summary_states_the_primary_comparisons_with_the_unaided_arm(reports):
    analysis, html = reports["analysis"], reports["html"]
    summary = html[:html.index('<section id="methods">')]
    for c in analysis.mrmc_auc.result.primary:
        assert f"{c.estimate:.3f} (95% CI {c.ci_low:.3f} to {c.ci_high:.3f})" in summary
    assert "Arm B: AI prediction minus Arm A: unaided" in summary


def test_tables_show_the_numbers_of_the_analysis(reports):
    analysis, html = reports["analysis"], reports["html"]
    arms = analysis.mrmc_auc.result.or_result.analyses["rrrc"].arms
    for arm in arms:
        assert f"<td class=\"n\">{arm.estimate:.3f}</td>" in html
    gain = analysis.explanation_gain.result.gain.arms[0]
    assert f"{gain.difference:.3f}" in html
    kappa = analysis.agreement.result.fleiss[-1].kappa.kappa
    assert f"{kappa:.3f}".replace("-", "−") in html
    assert "9.9.9-test" in html and "2030-01-02 03:04 UTC" in html


def test_arms_are_blind_unless_the_metadata_names_the_explainers(reports):
    blind, unblinded = reports["html"], reports["unblinded_html"]
    for name in EXPLAINERS:
        assert name not in blind
        assert name in unblinded
        assert name not in json.dumps(reports["analysis"].to_dict())
    assert "Arm C: AI prediction and explanation" in blind
    assert "blinded arm labels" in blind and "blinded arm labels" not in unblinded
    assert "<th>explainer</th>" in unblinded and "<th>explainer</th>" not in blind


def test_sections_that_cannot_be_computed_show_their_reason(degenerate):
    analysis, html = degenerate
    assert headings(html) == [escape(h) for h in HEADINGS]
    missing = {name: s.reason for name, s in analysis.sections().items() if s.reason}
    assert {"mrmc_auc", "mrmc_accuracy", "reliance", "agreement", "ratings", "reading_time",
            "subgroups"} <= set(missing)
    for name, reason in missing.items():
        section = html[html.index(f'<section id="{name if name != "roc" else "mrmc_auc"}">'):]
        assert f"Not computed: {escape(reason)}" in section[:section.index("</section>")], name
    # ROC curves and gain bars still drawn where data allow; no MRMC forest plot
    assert 'id="fig-roc"' in html and 'id="fig-forest"' not in html
    assert "Figure not drawn" not in html


def test_report_of_a_study_without_reads_is_still_a_document():
    analysis = analyse_study([], blind_meta(n_bootstrap=10))
    html = render_html(analysis, generated_at="now", versions={})
    assert headings(html) == [escape(h) for h in HEADINGS]
    assert "<img" not in html


def inflated(pdf: bytes) -> bytes:
    """The PDF with its Flate streams (object streams included) decompressed."""
    parts = [pdf]
    for match in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        try:
            parts.append(zlib.decompress(match.group(1)))
        except zlib.error:
            continue
    return b"\n".join(parts)


def test_pdf_is_a_multi_page_pdf_with_the_figures(reports):
    pdf = reports["pdf"]
    assert pdf.startswith(b"%PDF-")
    assert len(pdf) > 100_000  # six embedded PNG figures
    objects = inflated(pdf)
    assert len(re.findall(rb"/Type\s*/Page[^s]", objects)) >= 5
    assert len(re.findall(rb"/Subtype\s*/Image", objects)) >= len(FIGURES)


def test_rendering_leaves_no_pyplot_figure_open(reports):
    pyplot = sys.modules.get("matplotlib.pyplot")
    assert pyplot is None or pyplot.get_fignums() == []


def test_rendering_a_pdf_leaves_pillow_strict():
    from PIL import ImageFile

    from analysis.report import render_pdf

    ImageFile.LOAD_TRUNCATED_IMAGES = False
    assert render_pdf("<p>x</p>").startswith(b"%PDF")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_the_accuracy_model_section_shows_odds_ratios_by_ai_correctness(reports):
    html = reports["html"]
    start = html.index('<section id="accuracy_model">')
    body = html[start:html.index("</section>", start)]
    assert "Fixed effects" in body and "Random intercepts" in body
    assert "odds ratio of a correct read" in body
    assert "AI right" in body and "AI wrong" in body
    methods = html[html.index('<section id="methods">'):]
    assert "as lme4&#x27;s glmer fits it" in methods or "as lme4's glmer fits it" in methods
