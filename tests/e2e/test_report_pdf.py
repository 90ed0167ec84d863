"""The study report in Debian's chromium: the HTML report fits a 1280 px window (no table or
figure wider than the window), blinded and unblinded. The PDF's text is checked in
tests/analysis/test_report_layout.py."""

from __future__ import annotations

import pytest

from analysis.report import render_html
from analysis.stats.study import analyse_study
from tests.analysis.test_study_analysis import (
    blind_meta,
    synthetic_metrics,
    synthetic_reads,
    unblinded_meta,
)

pytestmark = pytest.mark.e2e

WINDOW = 1280


@pytest.fixture(scope="module")
def reports():
    reads = synthetic_reads()
    metrics = synthetic_metrics(reads)
    return {name: render_html(analyse_study(reads, meta(n_bootstrap=100), metrics=metrics),
                              generated_at="now", versions={"numpy": "1"})
            for name, meta in (("blinded", blind_meta), ("unblinded", unblinded_meta))}


@pytest.mark.parametrize("which", ["blinded", "unblinded"])
def test_the_html_report_fits_a_1280_px_window(new_page, reports, which):
    page = new_page(viewport=(WINDOW, 900))
    page.set_content(reports[which])
    sizes = page.evaluate("""() => ({
        scroll: document.documentElement.scrollWidth,
        body: document.body.getBoundingClientRect().right,
        tables: document.querySelectorAll('table').length,
        widest: Math.max(...[...document.querySelectorAll('table, figure, img')]
                         .map(e => e.getBoundingClientRect().right)),
    })""")
    assert sizes["tables"] > 30
    assert sizes["scroll"] <= WINDOW, sizes
    assert sizes["widest"] <= sizes["body"] + 1, sizes  # inside the text column, too
