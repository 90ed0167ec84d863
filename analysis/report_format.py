"""Formatting of the study report: numbers, intervals, notes and tables that fit the page.

Tables fit an A4 page (WeasyPrint) and the report's text column in a browser: a cell may hold
several lines (an estimate over its interval), text columns wrap, and a table whose estimated
width exceeds ``TABLE_BUDGET_EM`` is split into parts that each repeat the label column
(``split_columns``). Widths are measured with the report's font (DejaVu Sans, as bundled with
matplotlib; bold for the headers); tests check the PDF's text for every column header and that
the HTML fits a 1280 px window. A "note" column with nothing in it is left out.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from html import escape

from analysis.stats.explanation_gain import FIRST_STAGE
from analysis.stats.proportions import Proportion
from analysis.stats.study import Section, StudyMeta

CSS = """
@page { size: A4; margin: 16mm 14mm; }
body { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; font-size: 10pt;
       color: #1d1d1d; line-height: 1.4; max-width: 60em; margin: 1.5em auto; padding: 0 1em; }
h1 { font-size: 18pt; margin-bottom: 0.2em; }
h2 { font-size: 13.5pt; border-bottom: 1px solid #bbb; padding-bottom: 0.15em;
     margin-top: 1.6em; break-after: avoid; }
h3 { font-size: 11pt; margin-bottom: 0.3em; break-after: avoid; }
p.meta { color: #555; margin-top: 0; }
div.table { break-inside: avoid; margin: 0.5em 0 1em; max-width: 100%; }
table { border-collapse: collapse; font-size: 8.8pt; }
th, td { border-bottom: 1px solid #ddd; padding: 0.2em 0.5em; text-align: left;
         vertical-align: top; overflow-wrap: break-word; }
th { background: #f2f2f2; font-weight: 600; }
td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.n span.sub { color: #555; }
td.t { min-width: 6em; }
tr.group td { background: #fafafa; font-style: italic; }
caption { caption-side: top; text-align: left; font-weight: 600; padding-bottom: 0.2em; }
p.table-note { font-size: 8.4pt; color: #444; margin: 0.15em 0 0; }
figure { margin: 0.8em 0 1.2em; break-inside: avoid; }
figure img { max-width: 100%; height: auto; }
figcaption { font-size: 8.8pt; color: #444; }
.reason { background: #fff6e0; border-left: 3px solid #e0a800; padding: 0.35em 0.7em; }
.notes { font-size: 8.8pt; color: #555; }
"""

TABLE_BUDGET_EM = 55.0  # widest table, in em of the table font (A4 text width: about 58.6 em)
PAD_EM = 1.1  # left and right padding of a cell, in em
WRAP_EM = 12.0  # a wrapping column is laid out at most this wide (unless a word is wider)

Cell = str | int | float | tuple  # a tuple: one line each


# ----------------------------------------------------------------------------- numbers


def num(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a" if value is None or math.isnan(value) else ("∞" if value > 0 else "−∞")
    text = f"{value:.{digits}f}"
    if float(text) == 0:  # no "−0.000" for a negative zero or a tiny negative value
        text = text.lstrip("-")
    return text.replace("-", "−")


def p_text(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def ci(low: float | None, high: float | None, digits: int = 3) -> str:
    if low is None or high is None:
        return "n/a"
    return f"{num(low, digits)} to {num(high, digits)}"


def df_text(value: float | None) -> str:
    if value is None or math.isinf(value):
        return "∞"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def prop(p: Proportion) -> str:
    """One line: estimate (interval; count)."""
    if p.estimate is None:
        return f"{p.successes}/{p.total}"
    return f"{p.estimate:.3f} ({ci(p.ci_low, p.ci_high)}; {p.successes}/{p.total})"


def prop_cell(p: Proportion) -> tuple[str, ...]:
    """Two lines for a table cell: estimate (count) over its interval."""
    if p.estimate is None:
        return (f"{p.successes}/{p.total}",)
    return (f"{p.estimate:.3f} ({p.successes}/{p.total})", ci(p.ci_low, p.ci_high))


def short(meta: StudyMeta, code: str) -> str:
    """The part of an arm's label before a colon ("Arm B"), for tight figure axes."""
    label = meta.label(code)
    return label.split(":", 1)[0].strip() if ":" in label else label


def arm_label(meta: StudyMeta, code: str | None) -> str:
    if code == FIRST_STAGE:
        return "first-stage answers of the same reads"
    return meta.label(code)


FOM_NAMES = {"auc": "AUC", "binormal_auc": "binormal AUC"}
FOM_WORDS = {
    "auc": "the area under the empirical ROC curve (AUC, Wilcoxon–Mann–Whitney)",
    "binormal_auc": "the area under the binormal ROC curve fitted by maximum likelihood "
    "(binormal AUC; Dorfman and Alf, as in ROCFIT and MRMCaov)",
}


def fom_name(fom: str) -> str:
    """The figure of merit as a table heading names it (AUC, binormal AUC, accuracy)."""
    return FOM_NAMES.get(fom, fom)


def cov_words(cov_method: str, meta: StudyMeta) -> str:
    """The case-sampling covariance method in words (for the methods and the MRMC section)."""
    if cov_method == "bootstrap":
        return (
            f"a case-bootstrap estimate of the case-sampling covariance ({meta.n_bootstrap} "
            f"samples, seed {meta.seed})"
        )
    return {
        "jackknife": "a jackknife estimate of the case-sampling covariance",
        "delong": "DeLong's estimate of the case-sampling covariance (structural components)",
        "unbiased": "the unbiased (U-statistic) estimate of the case-sampling covariance, "
        "as in MRMCaov",
    }.get(cov_method, f"the {cov_method} estimate of the case-sampling covariance")


def conf_words(conf_level: float) -> str:
    return f"{conf_level * 100:g}%"


# ----------------------------------------------------------------------------- tables


def _lines(cell: Cell) -> tuple[str, ...]:
    return tuple(str(c) for c in cell) if isinstance(cell, tuple) else (str(cell),)


@functools.cache
def _font(bold: bool):
    from matplotlib import font_manager
    from PIL import ImageFont

    path = font_manager.findfont(
        font_manager.FontProperties(family="DejaVu Sans", weight="bold" if bold else "normal")
    )
    return ImageFont.truetype(path, 1000)


@functools.lru_cache(maxsize=8192)
def text_em(text: str, bold: bool = False) -> float:
    """Width of ``text`` in em of DejaVu Sans (0.64 em a character if the font is missing)."""
    try:
        return _font(bold).getlength(text) / 1000
    except OSError:
        return 0.64 * len(text)


def _column_em(header: str, cells: Sequence[Cell], wraps: bool) -> float:
    """Estimated width of one column, in em of the table font."""
    words = max((text_em(w, bold=True) for w in header.split()), default=0.0)
    lines = [line for c in cells for line in _lines(c)]
    longest = max((text_em(line) for line in lines), default=0.0)
    if wraps:
        word = max((text_em(w) for line in lines for w in line.split()), default=0.0)
        longest = max(min(longest, WRAP_EM), word)
    return max(words, longest) + PAD_EM


def split_columns(widths: Sequence[float], budget: float = TABLE_BUDGET_EM) -> list[list[int]]:
    """Groups of the columns after the first whose width, with the first, fits ``budget``
    (greedy, in order; a column wider than the budget alone gets a group of its own)."""
    groups: list[list[int]] = [[]]
    used = widths[0] if widths else 0.0
    for i in range(1, len(widths)):
        if groups[-1] and used + widths[i] > budget:
            groups.append([])
            used = widths[0]
        groups[-1].append(i)
        used += widths[i]
    return groups


def _cell_html(cell: Cell, numeric: bool) -> str:
    lines = _lines(cell)
    body = escape(lines[0]) + "".join(
        f'<br><span class="sub">{escape(x)}</span>' for x in lines[1:]
    )
    return f'<td class="{"n" if numeric else "t"}">{body}</td>'


def _one_table(header, rows, columns, *, caption, numeric, group_rows) -> str:
    out = ['<div class="table"><table>']
    if caption:
        out.append(f"<caption>{escape(caption)}</caption>")
    out.append("<tr>" + "".join(f"<th>{escape(header[j])}</th>" for j in columns) + "</tr>")
    for i, row in enumerate(rows):
        if group_rows and i in group_rows:
            out.append(
                f'<tr class="group"><td colspan="{len(columns)}">{escape(group_rows[i])}</td></tr>'
            )
        out.append("<tr>" + "".join(_cell_html(row[j], numeric[j]) for j in columns) + "</tr>")
    out.append("</table></div>")
    return "\n".join(out)


def table(
    header: Sequence[str],
    rows: Sequence[Sequence[Cell]],
    *,
    caption: str = "",
    numeric_from: int = 1,
    group_rows: dict[int, str] | None = None,
    wrap: Sequence[int] = (),
    note: str = "",
) -> str:
    """An HTML table (cells escaped), split into parts when too wide for the page.

    Columns from ``numeric_from`` are right-aligned and do not wrap, except those in ``wrap``
    and a column headed "note"; a tuple cell shows one line each. ``note`` goes below.
    """
    keep = [j for j, h in enumerate(header) if h != "note" or any(str(r[j]).strip() for r in rows)]
    if len(keep) < len(header):
        header = [header[j] for j in keep]
        rows = [[r[j] for j in keep] for r in rows]
        wrap = [keep.index(j) for j in wrap if j in keep]
    n = len(header)
    numeric = [j >= numeric_from and j not in wrap and header[j] != "note" for j in range(n)]
    widths = [_column_em(header[j], [r[j] for r in rows], not numeric[j]) for j in range(n)]
    groups = split_columns(widths)
    parts = []
    for k, group in enumerate(groups):
        label = caption
        if len(groups) > 1:
            label = (
                f"{caption} (part {k + 1} of {len(groups)})"
                if caption
                else f"Part {k + 1} of {len(groups)}"
            )
        parts.append(
            _one_table(
                header, rows, [0, *group], caption=label, numeric=numeric, group_rows=group_rows
            )
        )
    if note:
        parts.append(f'<p class="table-note">{escape(note)}</p>')
    return "\n".join(parts)


# ----------------------------------------------------------------------------- text


def reason(section: Section) -> str:
    out = []
    if section.reason:
        out.append(f'<p class="reason">Not computed: {escape(section.reason)}</p>')
    if section.notes:
        out.append(
            '<ul class="notes">' + "".join(f"<li>{escape(n)}</li>" for n in section.notes) + "</ul>"
        )
    return "\n".join(out)


def paragraph(text: str) -> str:
    return f"<p>{escape(text)}</p>"


def and_list(items: Sequence[str]) -> str:
    """ "a", "a and b", "a, b and c"."""
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
