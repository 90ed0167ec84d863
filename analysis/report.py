"""The study report: one self-contained HTML document (and its PDF) from a ``StudyAnalysis``.

``render_html`` writes plain HTML with inline CSS and the figures as base64 PNG ``data:`` URIs
drawn by matplotlib's Agg canvas (``Figure`` + ``FigureCanvasAgg``: no pyplot, so no global
figure registry and nothing left open), so the file opens offline and refers to nothing
outside itself. It does not use Django: it can run in a worker, a script or a test.
``render_pdf`` lays the same HTML out with WeasyPrint.

Arms appear only by their ``ArmMeta.label`` (neutral unless the caller unblinded the study);
an explainer's name appears only where the caller put it into ``ArmMeta``. Every section says
why it is empty when its analysis could not be computed.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Callable, Sequence
from html import escape

from analysis.stats.explanation_gain import FIRST_STAGE
from analysis.stats.proportions import Proportion
from analysis.stats.study import MRMCSection, Section, StudyAnalysis, StudyMeta

SECTION_TITLES = {
    "summary": "Summary",
    "methods": "Study and methods",
    "counts": "Readers, cases and reads",
    "proportions": "Sensitivity, specificity and accuracy",
    "mrmc_auc": "ROC analysis (Obuchowski–Rockette)",
    "mrmc_accuracy": "Accuracy (Obuchowski–Rockette)",
    "reliance": "Reliance on the AI",
    "agreement": "Agreement",
    "ratings": "Likert ratings",
    "reading_time": "Reading time",
    "explanation_gain": "Explanation gain",
    "subgroups": "Subgroups by reader experience",
    "software": "Software",
}
FIGURE_IDS = ("roc", "forest", "likert", "reliance", "metric_gain", "reading_time")
ANALYSIS_NAMES = {"rrrc": "RRRC", "frrc": "FRRC", "rrfc": "RRFC"}
PALETTE = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3",
           "#8c8c8c", "#ccb974", "#64b5cd")
GROUP_TITLES = {
    "versus_unaided": "versus unaided (primary)",
    "between_explainers": "between explainer arms",
    "other": "other pairs",
}

CSS = """
@page { size: A4; margin: 16mm 14mm; }
body { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; font-size: 10pt;
       color: #1d1d1d; line-height: 1.4; max-width: 60em; margin: 1.5em auto; padding: 0 1em; }
h1 { font-size: 18pt; margin-bottom: 0.2em; }
h2 { font-size: 13.5pt; border-bottom: 1px solid #bbb; padding-bottom: 0.15em;
     margin-top: 1.6em; page-break-after: avoid; }
h3 { font-size: 11pt; margin-bottom: 0.3em; page-break-after: avoid; }
p.meta { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 8.8pt;
        page-break-inside: avoid; }
th, td { border-bottom: 1px solid #ddd; padding: 0.2em 0.55em; text-align: left;
         vertical-align: top; }
th { background: #f2f2f2; font-weight: 600; }
td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.group td { background: #fafafa; font-style: italic; }
caption { caption-side: top; text-align: left; font-weight: 600; padding-bottom: 0.2em; }
figure { margin: 0.8em 0 1.2em; page-break-inside: avoid; }
figure img { max-width: 100%; height: auto; }
figcaption { font-size: 8.8pt; color: #444; }
.reason { background: #fff6e0; border-left: 3px solid #e0a800; padding: 0.35em 0.7em; }
.notes { font-size: 8.8pt; color: #555; }
"""


# ----------------------------------------------------------------------------- formatting


def _num(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a" if value is None or math.isnan(value) else ("∞" if value > 0 else "−∞")
    return f"{value:.{digits}f}".replace("-", "−")


def _p(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _ci(low: float | None, high: float | None, digits: int = 3) -> str:
    if low is None or high is None:
        return "n/a"
    return f"{_num(low, digits)} to {_num(high, digits)}"


def _df(value: float | None) -> str:
    if value is None or math.isinf(value):
        return "∞"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def _prop(p: Proportion) -> str:
    if p.estimate is None:
        return f"{p.successes}/{p.total}"
    return f"{p.estimate:.3f} ({_ci(p.ci_low, p.ci_high)}; {p.successes}/{p.total})"


def _short(meta: StudyMeta, code: str) -> str:
    """The part of an arm's label before a colon ("Arm B"), for tight figure axes."""
    label = meta.label(code)
    return label.split(":", 1)[0].strip() if ":" in label else label


def _arm_label(meta: StudyMeta, code: str | None) -> str:
    if code == FIRST_STAGE:
        return "first-stage answers of the same reads"
    return meta.label(code)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], *, caption: str = "",
           numeric_from: int = 1, group_rows: dict[int, str] | None = None) -> str:
    """An HTML table; cells are escaped; columns from ``numeric_from`` are right-aligned."""
    out = ["<table>"]
    if caption:
        out.append(f"<caption>{escape(caption)}</caption>")
    out.append("<tr>" + "".join(f"<th>{escape(h)}</th>" for h in header) + "</tr>")
    for i, row in enumerate(rows):
        if group_rows and i in group_rows:
            out.append(f'<tr class="group"><td colspan="{len(header)}">'
                       f"{escape(group_rows[i])}</td></tr>")
        cells = "".join(
            f'<td class="n">{escape(str(c))}</td>' if j >= numeric_from else
            f"<td>{escape(str(c))}</td>" for j, c in enumerate(row))
        out.append(f"<tr>{cells}</tr>")
    out.append("</table>")
    return "\n".join(out)


def _reason(section: Section) -> str:
    out = []
    if section.reason:
        out.append(f'<p class="reason">Not computed: {escape(section.reason)}</p>')
    if section.notes:
        out.append('<ul class="notes">' + "".join(f"<li>{escape(n)}</li>"
                                                  for n in section.notes) + "</ul>")
    return "\n".join(out)


def _paragraph(text: str) -> str:
    return f"<p>{escape(text)}</p>"


# ----------------------------------------------------------------------------- figures


def _figure(draw: Callable, *, width: float, height: float, alt: str, caption: str,
            figure_id: str) -> str:
    """Draw with matplotlib's Agg canvas and embed the PNG; a drawing error becomes a note."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.rc_context({"font.size": 8, "axes.titlesize": 8.5, "axes.labelsize": 8,
                                "legend.fontsize": 7, "xtick.labelsize": 7,
                                "ytick.labelsize": 7}):
        fig = Figure(figsize=(width, height), layout="constrained")
        FigureCanvasAgg(fig)
        try:
            draw(fig)
            buffer = io.BytesIO()
            fig.savefig(buffer, format="png", dpi=130, metadata={"Software": None})
        except (ValueError, TypeError, RuntimeError) as exc:
            return f'<p class="reason">Figure not drawn: {escape(str(exc))}</p>'
        finally:
            fig.clear()
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return (f'<figure id="fig-{figure_id}"><img src="data:image/png;base64,{data}" '
            f'alt="{escape(alt)}"><figcaption>{escape(caption)}</figcaption></figure>')


def _colour(codes: Sequence[str], code: str) -> str:
    return PALETTE[list(codes).index(code) % len(PALETTE)] if code in codes else "#333333"


def _roc_figure(a: StudyAnalysis, codes: Sequence[str]) -> str:
    curves = [c for c in (a.roc.result or ()) if c.reason is None]
    if not curves:
        return ""

    def draw(fig):
        ax = fig.add_subplot()
        ax.plot([0, 1], [0, 1], color="#aaaaaa", lw=0.8, ls="--")
        for c in curves:
            ax.plot(c.fpr, c.tpr, drawstyle="default", lw=1.4,
                    color=_colour(codes, c.arm),
                    label=f"{a.meta.label(c.arm)} (pooled AUC {c.auc:.3f})")
        ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="1 − specificity (false-positive fraction)",
               ylabel="sensitivity (true-positive fraction)", aspect="equal")
        ax.legend(loc="lower right", frameon=False)

    return _figure(draw, width=5.2, height=4.6, figure_id="roc",
                   alt="Empirical ROC curves per arm",
                   caption="Figure: empirical ROC curves of the final confidence per arm, every "
                           "reader's reads pooled (descriptive; the OR analysis averages "
                           "per-reader AUCs).")


def _ordered_comparisons(section: MRMCSection):
    groups = section.groups.get("rrrc")
    if groups is None:
        return []
    return [(name, c) for name in GROUP_TITLES for c in getattr(groups, name)]


def _forest_figure(a: StudyAnalysis) -> str:
    panels = [(s.result, title) for s, title in ((a.mrmc_auc, "AUC difference"),
                                                 (a.mrmc_accuracy, "accuracy difference"))
              if s.ok and _ordered_comparisons(s.result)]
    if not panels:
        return ""
    rows = [(name, c.minuend, c.subtrahend) for name, c in _ordered_comparisons(panels[0][0])]
    labels = [f"{_short(a.meta, m)} − {_short(a.meta, s)}" for _, m, s in rows]
    conf = f"{a.meta.conf_level * 100:g}%"

    def draw(fig):
        axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
        y = list(range(len(rows)))[::-1]
        for ax, (section, title) in zip(axes, panels, strict=True):
            by_pair = {(c.minuend, c.subtrahend): c for _, c in _ordered_comparisons(section)}
            for yi, (name, m, s) in zip(y, rows, strict=True):
                c = by_pair.get((m, s))
                if c is None:
                    continue
                colour = "#c44e52" if name == "versus_unaided" else "#4c72b0"
                ax.errorbar(c.estimate, yi, xerr=[[c.estimate - c.ci_low],
                                                   [c.ci_high - c.estimate]],
                            fmt="o", color=colour, ms=4, capsize=2.5, lw=1.2)
            ax.axvline(0, color="#777777", lw=0.8, ls="--")
            ax.set_xlabel(f"{title} (RRRC, {conf} CI)")
        axes[0].set_yticks(y, labels)
        axes[0].set_ylim(-0.7, len(rows) - 0.3)

    return _figure(draw, width=6.6, height=0.45 * len(rows) + 1.1, figure_id="forest",
                   alt="Forest plot of differences between arms",
                   caption="Figure: differences between arms from the OR analysis (random "
                           "readers and cases; red: versus the unaided arm, arm minus "
                           "unaided) with Hillis-df confidence intervals; Holm-adjusted "
                           "p-values are in the tables.")


def _likert_figure(a: StudyAnalysis, codes: Sequence[str]) -> str:
    res = a.ratings.result
    if res is None or not res.items:
        return ""
    from matplotlib import colormaps

    items = res.items

    def draw(fig):
        sizes = [max(1, sum(1 for d in res.distributions if d.item == i and d.n)) for i in items]
        axes = fig.subplots(len(items), 1, squeeze=False,
                            gridspec_kw={"height_ratios": sizes})[:, 0]
        for ax, item in zip(axes, items, strict=True):
            dists = [d for d in res.distributions if d.item == item and d.n > 0]
            points = res.points[item]
            cmap = colormaps["RdYlGn"]
            colours = [cmap(0.1 + 0.8 * k / max(points - 1, 1)) for k in range(points)]
            ys = list(range(len(dists)))[::-1]
            for y, d in zip(ys, dists, strict=True):
                left = 0.0
                for k, level in enumerate(d.levels):
                    share = level.share or 0.0
                    ax.barh(y, share, left=left, color=colours[k], edgecolor="white", lw=0.5,
                            label=str(level.level) if y == ys[0] else None)
                    left += share
            ax.set_yticks(ys, [f"{_short(a.meta, d.arm)} (n={d.n})" for d in dists])
            ax.set_xlim(0, 1)
            ax.set_title(item.replace("_", " "), loc="left")
            ax.xaxis.set_major_formatter(lambda v, _pos: f"{v:.0%}")
        axes[0].legend(title="rating", ncols=max(res.points.values()), loc="lower right",
                       bbox_to_anchor=(1.0, 1.02), frameon=False)

    height = sum(0.35 * max(1, sum(1 for d in res.distributions if d.item == i and d.n)) + 0.7
                 for i in items) + 0.4
    return _figure(draw, width=6.6, height=height, figure_id="likert",
                   alt="Likert rating distributions per item and arm",
                   caption="Figure: distribution of each Likert item per arm (share of ratings "
                           "at each level).")


RELIANCE_BARS = (("switch_rate", "switch rate"), ("agreement_after", "agreement with AI"),
                 ("rair", "RAIR"), ("rsr", "RSR"), ("over_reliance", "over-reliance"),
                 ("under_reliance", "under-reliance"))


def _reliance_figure(a: StudyAnalysis, codes: Sequence[str]) -> str:
    res = a.reliance.result
    if not a.reliance.ok or not res.arms:
        return ""
    arms = res.arms

    def draw(fig):
        ax = fig.add_subplot()
        width = 0.8 / len(arms)
        for i, m in enumerate(arms):
            xs, heights, lows, highs = [], [], [], []
            for j, (attr, _) in enumerate(RELIANCE_BARS):
                p = getattr(m, attr)
                if p.estimate is None:
                    continue
                xs.append(j - 0.4 + width * (i + 0.5))
                heights.append(p.estimate)
                lows.append(max(p.estimate - p.ci_low, 0.0))
                highs.append(max(p.ci_high - p.estimate, 0.0))
            ax.bar(xs, heights, width=width * 0.92, color=_colour(codes, m.arm),
                   yerr=[lows, highs], capsize=2, error_kw={"lw": 0.8},
                   label=a.meta.label(m.arm))
        ax.set_xticks(range(len(RELIANCE_BARS)), [t for _, t in RELIANCE_BARS])
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("proportion")
        ax.legend(frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.1),
                  ncols=min(len(arms), 2))

    return _figure(draw, width=6.6, height=3.6, figure_id="reliance",
                   alt="Reliance measures per arm",
                   caption="Figure: reliance measures per arm with Wilson intervals (reads "
                           "treated as independent; descriptive).")


def _metric_figure(a: StudyAnalysis, codes: Sequence[str]) -> str:
    res = a.explanation_gain.result
    if not a.explanation_gain.ok or not res.correlations:
        return ""
    arms = list(dict.fromkeys(c.arm for c in res.correlations))
    names = list(dict.fromkeys(c.metric for c in res.correlations))
    by_key = {(c.arm, c.metric): c for c in res.correlations}

    def draw(fig):
        axes = fig.subplots(len(names), len(arms), squeeze=False)
        for i, name in enumerate(names):
            for j, arm in enumerate(arms):
                ax = axes[i, j]
                corr = by_key.get((arm, name))
                if corr is None or not corr.points:
                    ax.set_axis_off()
                    continue
                ax.scatter([p.value for p in corr.points], [p.gain for p in corr.points], s=9,
                           color=_colour(codes, arm), alpha=0.75, lw=0)
                ax.axhline(0, color="#999999", lw=0.6, ls="--")
                rho = corr.correlation.rho
                stat = (f"ρ = {rho:.2f}, p = {_p(corr.correlation.p_value)}"
                        if rho is not None else "ρ n/a")
                ax.set_title(f"{_short(a.meta, arm)}: {stat}", loc="left")
                ax.set_xlabel(name.replace("_", " "))
                if j == 0:
                    ax.set_ylabel("per-case accuracy gain")

    return _figure(draw, width=min(2.4 * len(arms) + 0.6, 6.8),
                   height=2.0 * len(names) + 0.3, figure_id="metric_gain",
                   alt="Explanation metric versus per-case accuracy gain",
                   caption="Figure: per-case accuracy gain over unaided reading against each "
                           "explanation-quality metric, per explainer arm, with Spearman's "
                           "rank correlation.")


def _time_figure(a: StudyAnalysis, codes: Sequence[str]) -> str:
    res = a.reading_time.result
    if res is None or not res.summaries:
        return ""
    summaries = res.summaries

    def draw(fig):
        ax = fig.add_subplot()
        stats = [{"label": _short(a.meta, s.arm), "whislo": s.whisker_low, "q1": s.q1,
                  "med": s.median, "q3": s.q3, "whishi": s.whisker_high, "fliers": []}
                 for s in summaries]
        boxes = ax.bxp(stats, showfliers=False, patch_artist=True, widths=0.5,
                       medianprops={"color": "black"})
        for patch, s in zip(boxes["boxes"], summaries, strict=True):
            patch.set(facecolor=_colour(codes, s.arm), alpha=0.55)
        ax.scatter(range(1, len(summaries) + 1), [s.geometric_mean for s in summaries],
                   marker="D", color="black", s=14, zorder=3, label="geometric mean")
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(lambda v, _pos: f"{v:g}")
        ax.yaxis.set_minor_formatter(lambda v, _pos: f"{v:g}" if str(f"{v:g}")[0] in "25" else "")
        ax.set_ylabel("reading time per case (s, log scale)")
        ax.legend(frameon=False, loc="upper left")

    return _figure(draw, width=5.2, height=3.2, figure_id="reading_time",
                   alt="Reading time per arm",
                   caption="Figure: reading time per case and arm (box: quartiles; whiskers: "
                           "most extreme times within 1.5 IQR; diamond: geometric mean).")


# ----------------------------------------------------------------------------- sections


def _summary(a: StudyAnalysis) -> str:
    meta = a.meta
    out = []
    counts = a.counts.result
    out.append(_paragraph(
        f"{counts.readers} readers read {counts.cases} cases in {len(counts.arms)} arms "
        f"({counts.main_reads} main reads; {_design_words(meta)}, {_protocol_words(meta)})."))
    conf = f"{meta.conf_level * 100:g}%"
    auc = a.mrmc_auc
    if auc.ok:
        res = auc.result.or_result
        rrrc = res.analyses.get("rrrc")
        means = ", ".join(f"{meta.label(t)} {m:.3f}" for t, m in
                          zip(res.treatments, res.arm_means, strict=True))
        out.append(_paragraph(f"Reader-averaged AUC: {means}."))
        if rrrc is not None and rrrc.global_test is not None:
            g = rrrc.global_test
            out.append(_paragraph(
                f"Test of equal AUCs across arms (OR, random readers and cases): "
                f"F({_df(g.df1)}, {_df(g.df2)}) = {_num(g.statistic, 2)}, p = {_p(g.p_value)}."))
        for c in auc.result.primary:
            out.append(_paragraph(
                f"Primary: AUC of {meta.label(c.minuend)} minus {meta.label(c.subtrahend)} = "
                f"{_num(c.estimate)} ({conf} CI {_ci(c.ci_low, c.ci_high)}), "
                f"p = {_p(c.p_value)} (Holm {_p(c.p_holm)})."))
    else:
        out.append(_paragraph(f"The MRMC ROC analysis was not computed: {auc.reason}"))
    if a.reliance.ok:
        o = a.reliance.result.overall
        out.append(_paragraph(
            f"Reliance over all aided arms: RAIR {_num(o.rair.estimate)}, RSR "
            f"{_num(o.rsr.estimate)}, switch rate {_num(o.switch_rate.estimate)} "
            f"({o.n_reads} reads)."))
    if a.explanation_gain.ok:
        gains = a.explanation_gain.result.gain
        parts = [f"{meta.label(g.arm)} {_num(g.difference)} "
                 f"({_ci(g.bootstrap_ci_low, g.bootstrap_ci_high)})" for g in gains.arms]
        out.append(_paragraph(
            f"Accuracy gain over {_arm_label(meta, gains.unaided)} ({conf} case-bootstrap CI): "
            + "; ".join(parts) + "."))
    skipped = [SECTION_TITLES[name] for name, s in a.sections().items()
               if s.reason and name in SECTION_TITLES]
    if skipped:
        out.append(_paragraph("Not computed (see each section for the reason): "
                              + ", ".join(skipped) + "."))
    return "\n".join(out)


def _design_words(meta: StudyMeta) -> str:
    return ("Latin-square split-plot design: each reader read each case once, under one arm"
            if meta.design == "latin_square" else
            "fully crossed design: every reader read every case under every arm")


def _protocol_words(meta: StudyMeta) -> str:
    return ("two-stage reading: an unaided first answer, then the arm's AI output and a final "
            "answer" if meta.two_stage else "single-stage reading: one answer per case")


def _methods(a: StudyAnalysis) -> str:
    meta = a.meta
    conf = f"{meta.conf_level * 100:g}%"
    boot = meta.n_bootstrap
    paragraphs = [
        f"{_design_words(meta)}; {_protocol_words(meta)}. The finding is "
        f"“{meta.positive_class or 'positive'}”. Only main trials are analysed; training and "
        f"attention-check trials are left out. Intervals are {conf}.",
        "Discrimination: the area under the empirical ROC curve (AUC, Wilcoxon–Mann–Whitney) "
        "of each reader's final confidence in each arm, compared across arms with the "
        "Obuchowski–Rockette (OR) method with Hillis (2007) denominator degrees of freedom "
        "and a jackknife estimate of the case-sampling covariance. Random readers and random "
        "cases (RRRC) is the primary analysis; fixed readers (FRRC) and fixed cases (RRFC) "
        "are reported too. In a split-plot layout the covariance of two reader-arm units is "
        "estimated over the cases they share (zero when they share none). Every pairwise "
        "difference is tested, with Holm's step-down adjustment over all pairs; the "
        "comparisons with the unaided arm (arm minus unaided) are the primary result. The "
        "same OR analysis is applied to the accuracy of the final diagnosis.",
        "Sensitivity, specificity and accuracy pooled over readers with Wilson score "
        "intervals (descriptive: reads are treated as independent).",
        "Reliance on the AI (two-stage reading): the definitions of Schemmer et al. (2023) — "
        "relative AI reliance (RAIR), relative self-reliance (RSR), over- and under-reliance "
        "and the switch rate — from the first and final answers, with Wilson intervals.",
        f"Agreement between readers: Fleiss' kappa of the final diagnosis per arm in Gwet's "
        f"generalisation to unequal numbers of readers per case, with a percentile bootstrap "
        f"over cases ({boot} samples); agreement of each reader with the AI: Cohen's kappa.",
        "Likert ratings: a proportional-odds (cumulative logit) model per item with arm as "
        "predictor and reader-clustered (sandwich) standard errors; an odds ratio above 1 "
        "means higher ratings than in the reference arm.",
        "Reading time: a linear mixed model on log seconds with arm as fixed effect and "
        "crossed random intercepts for reader and case (REML); effects are ratios of "
        "geometric mean times.",
        f"Explanation gain: accuracy of each aided arm minus unaided accuracy, with a "
        f"percentile bootstrap over cases ({boot} samples, seed {meta.seed}) and Newcombe's "
        f"hybrid score interval; the per-case gain is related to each explanation-quality "
        f"metric by Spearman's rank correlation.",
    ]
    if a.subgroups.result is not None:
        sg = a.subgroups.result
        paragraphs.append(f"Subgroups: readers with fewer than {sg.threshold:g} years of "
                          f"experience versus the others (threshold: {sg.threshold_source}).")
    out = [_paragraph(p) for p in paragraphs]
    blinded = not any(arm.explainer for arm in meta.arms)
    header = ["code", "arm", "AI shown", "explanation shown"]
    rows = [[arm.code, arm.label, "yes" if arm.shows_ai else "no",
             "yes" if arm.shows_explanation else "no"] + ([] if blinded else
                                                          [arm.explainer or "—"])
            for arm in meta.arms]
    if not blinded:
        header.append("explainer")
    out.append(_table(header, rows, caption="Arms", numeric_from=99))
    out.append(_paragraph("Arm labels are blinded: explainers are not named." if blinded else
                          "Unblinded report: explainers are named."))
    return "\n".join(out)


def _counts(a: StudyAnalysis) -> str:
    c = a.counts.result
    out = [_reason(a.counts)]
    rows = [[a.meta.label(arm.arm), arm.reads, arm.readers, arm.cases, arm.positive_cases,
             arm.negative_cases] for arm in c.arms]
    rows.append(["all arms", c.main_reads, c.readers, c.cases, "", ""])
    out.append(_table(["arm", "main reads", "readers", "cases", "positive cases",
                       "negative cases"], rows, caption="Main reads per arm"))
    left = [[why, n] for why, n in c.excluded.items() if n]
    if left:
        out.append(_table(["reads left out", "number"], left, caption="Exclusions"))
    else:
        out.append(_paragraph("No read was left out."))
    return "\n".join(out)


def _proportion_table(meta: StudyMeta, res, caption: str) -> str:
    rows = [[meta.label(p.arm), _prop(p.sensitivity), _prop(p.specificity), _prop(p.accuracy)]
            for p in res.arms]
    return _table(["arm", "sensitivity", "specificity", "accuracy"], rows,
                  caption=f"{caption} ({res.n_reads} reads; {res.n_excluded} left out)")


def _proportions(a: StudyAnalysis) -> str:
    res = a.proportions.result
    out = [_reason(a.proportions)]
    if res is not None:
        out.append(_proportion_table(a.meta, res.final, "Final answers"))
        if res.first is not None and res.first.n_reads:
            out.append(_proportion_table(a.meta, res.first, "Unaided first-stage answers"))
    return "\n".join(out)


def _mrmc(a: StudyAnalysis, name: str, figures: str) -> str:
    section: Section = getattr(a, name)
    meta = a.meta
    out = [_reason(section)]
    if not section.ok:
        out.append(figures)
        return "\n".join(out)
    s: MRMCSection = section.result
    res = s.or_result
    conf = f"{res.conf_level * 100:g}%"
    fom = "AUC" if s.fom == "auc" else s.fom
    out.append(_paragraph(
        f"{len(res.readers)} readers, {res.n_cases} cases ({res.n_diseased} positive, "
        f"{res.n_nondiseased} negative)."
        + (f" Readers left out: {', '.join(s.readers_left_out)}." if s.readers_left_out
           else "")))
    rrrc = res.analyses.get("rrrc")
    if rrrc is not None:
        rows = [[meta.label(e.treatment), _num(e.estimate), _num(e.se, 4), _df(e.df),
                 _ci(e.ci_low, e.ci_high)] for e in rrrc.arms]
        out.append(_table(["arm", fom, "SE", "df", f"{conf} CI"], rows,
                          caption=f"{fom} per arm (reader average; RRRC intervals)"))
    tests = []
    for key, analysis in res.analyses.items():
        g = analysis.global_test
        if g is None:
            continue
        df = _df(g.df1) if g.statistic_name == "X2" else f"{_df(g.df1)}, {_df(g.df2)}"
        tests.append([f"{ANALYSIS_NAMES[key]} ({analysis.title})",
                      f"{g.statistic_name}({df}) = {_num(g.statistic, 2)}", _p(g.p_value),
                      "yes" if g.clamped else "no"])
    if tests:
        out.append(_table(["analysis", "statistic", "p", "Cov2 − Cov3 clamped"], tests,
                          caption="Test of equal arms"))
    for key, groups in s.groups.items():
        rows, group_rows = [], {}
        for group_name, title in GROUP_TITLES.items():
            comps = getattr(groups, group_name)
            if comps:
                group_rows[len(rows)] = title
            for c in comps:
                rows.append([f"{meta.label(c.minuend)} − {meta.label(c.subtrahend)}",
                             _num(c.estimate), _num(c.se, 4), _df(c.df),
                             _ci(c.ci_low, c.ci_high), _p(c.p_value), _p(c.p_holm)])
        if rows:
            out.append(_table(["difference", "estimate", "SE", "df", f"{conf} CI", "p",
                               "Holm p"], rows, group_rows=group_rows,
                              caption=f"Differences between arms, {ANALYSIS_NAMES[key]} "
                                      f"({res.analyses[key].title})"))
    vc = res.components
    out.append(_table(
        ["component", "estimate", "correlation"],
        [["Var(R)", _num(vc.var_r, 5), ""], ["Var(T×R)", _num(vc.var_tr, 5), ""],
         ["Cov1 (same reader, different arms)", _num(vc.cov1, 5), _num(vc.corr1)],
         ["Cov2 (different readers, same arm)", _num(vc.cov2, 5), _num(vc.corr2)],
         ["Cov3 (different readers and arms)", _num(vc.cov3, 5), _num(vc.corr3)],
         ["Var(error)", _num(vc.var_error, 5), ""]],
        caption="OR variance components (jackknife covariance)"))
    out.append(figures)
    return "\n".join(out)


def _reliance(a: StudyAnalysis, figure: str) -> str:
    out = [_reason(a.reliance)]
    res = a.reliance.result
    if res is None or not a.reliance.ok:
        return "\n".join(out)
    header = ["arm", "reads", "switch rate", "agreement with AI", "RAIR", "RSR",
              "over-reliance", "under-reliance"]

    def row(m, label):
        return [label, m.n_reads, _prop(m.switch_rate), _prop(m.agreement_after),
                _prop(m.rair), _prop(m.rsr), _prop(m.over_reliance), _prop(m.under_reliance)]

    rows = [row(m, a.meta.label(m.arm)) for m in res.arms] + [row(res.overall, "all arms")]
    out.append(_table(header, rows, caption="Reliance measures (estimate, Wilson interval, "
                                            "count)"))
    acc = [[a.meta.label(m.arm), _prop(m.accuracy_before), _prop(m.accuracy_after),
            _prop(m.ai_accuracy)] for m in res.arms]
    out.append(_table(["arm", "accuracy before AI", "accuracy after AI", "AI accuracy"], acc,
                      caption="Accuracy before and after seeing the AI"))
    wrong = [[a.meta.label(m.arm), m.n_reads, _prop(m.accuracy_after),
              _prop(m.agreement_after)] for m in res.ai_wrong_arms]
    out.append(_table(["arm", "reads", "final accuracy", "agreement with AI"], wrong,
                      caption="Reads where the AI was wrong"))
    out.append(figure)
    return "\n".join(out)


def _agreement(a: StudyAnalysis) -> str:
    out = [_reason(a.agreement)]
    res = a.agreement.result
    if res is None:
        return "\n".join(out)
    conf = f"{a.meta.conf_level * 100:g}%"
    rows = []
    for arm in res.fleiss:
        k = arm.kappa
        raters = (f"{k.raters_min}–{k.raters_max}" if k.raters_min is not None else "n/a")
        rows.append([a.meta.label(arm.arm), _num(k.kappa), _ci(k.ci_low, k.ci_high),
                     k.n_subjects, raters, k.reason or ""])
    out.append(_table(["arm", "Fleiss' kappa", f"{conf} CI", "cases (≥ 2 readers)",
                       "readers per case", "note"], rows,
                      caption="Agreement between readers on the final diagnosis"))
    if res.reader_ai:
        rows = [[a.meta.label(k.arm), k.reader, k.n, _num(k.kappa), _ci(k.ci_low, k.ci_high),
                 k.reason or ""] for k in res.reader_ai]
        out.append(_table(["arm", "reader", "reads", "Cohen's kappa", f"{conf} CI", "note"],
                          rows, caption="Agreement of each reader with the AI"))
    return "\n".join(out)


def _ratings(a: StudyAnalysis, figure: str) -> str:
    out = [_reason(a.ratings)]
    res = a.ratings.result
    if res is None:
        return "\n".join(out)
    conf = f"{a.meta.conf_level * 100:g}%"
    for item in res.items:
        out.append(f"<h3>{escape(item.replace('_', ' '))}</h3>")
        points = res.points[item]
        rows = [[a.meta.label(d.arm), d.n, _num(d.median, 1), _num(d.iqr, 1)]
                + [f"{lv.share:.0%}" if lv.share is not None else "" for lv in d.levels]
                for d in res.distributions if d.item == item and d.n]
        out.append(_table(["arm", "n", "median", "IQR"] + [str(k) for k in range(1, points + 1)],
                          rows, caption=f"Distribution (1–{points})"))
        fit = next((f for f in res.models if f.item == item), None)
        if fit is None:
            continue
        if fit.reason:
            out.append(f'<p class="reason">Model not fitted: {escape(fit.reason)}</p>')
        elif fit.odds_ratios:
            rows = [[a.meta.label(o.arm), _num(o.odds_ratio, 2), _ci(o.ci_low, o.ci_high, 2),
                     _p(o.p_value)] for o in fit.odds_ratios]
            out.append(_table(["arm", "odds ratio", f"{conf} CI", "p"], rows,
                              caption=f"Proportional-odds model versus "
                                      f"{a.meta.label(fit.reference)} ({fit.n} ratings, "
                                      f"{fit.n_readers} readers; SE: {fit.cov_type})"))
        if fit.notes:
            out.append('<ul class="notes">' + "".join(f"<li>{escape(n)}</li>"
                                                      for n in fit.notes) + "</ul>")
    out.append(figure)
    return "\n".join(out)


def _reading_time(a: StudyAnalysis, figure: str) -> str:
    out = [_reason(a.reading_time)]
    res = a.reading_time.result
    if res is None:
        return "\n".join(out)
    model = res.model
    rows = [[a.meta.label(t.arm), t.n, _num(t.geometric_mean_seconds, 1),
             _num(t.median_seconds, 1)] for t in model.arms]
    out.append(_table(["arm", "reads", "geometric mean (s)", "median (s)"], rows,
                      caption="Reading time per case"))
    if model.ratios:
        conf = f"{model.conf_level * 100:g}%"
        rows = [[a.meta.label(r.arm), _num(r.ratio), _ci(r.ci_low, r.ci_high), _p(r.p_value)]
                for r in model.ratios]
        which = ("crossed reader and case intercepts" if model.model == "crossed" else
                 "reader intercept only (the crossed model did not fit)")
        out.append(_table(["arm", "time ratio", f"{conf} CI", "p"], rows,
                          caption=f"Mixed model on log time versus "
                                  f"{a.meta.label(model.reference)} ({which})"))
    out.append(figure)
    return "\n".join(out)


def _gain(a: StudyAnalysis, figure: str) -> str:
    out = [_reason(a.explanation_gain)]
    res = a.explanation_gain.result
    if res is None:
        return "\n".join(out)
    gain = res.gain
    conf = f"{gain.conf_level * 100:g}%"
    rows = [[a.meta.label(g.arm), _prop(g.accuracy_arm), _prop(g.accuracy_unaided),
             _num(g.difference), _ci(g.bootstrap_ci_low, g.bootstrap_ci_high),
             _ci(g.newcombe_ci_low, g.newcombe_ci_high), g.reason or ""] for g in gain.arms]
    out.append(_table(["arm", "accuracy", "unaided accuracy", "gain",
                       f"{conf} CI (case bootstrap)", f"{conf} CI (Newcombe)", "note"], rows,
                      caption=f"Accuracy gain over {_arm_label(a.meta, gain.unaided)}"))
    if res.correlations:
        rows = [[a.meta.label(c.arm), c.metric.replace("_", " "), _num(c.correlation.rho),
                 _p(c.correlation.p_value), c.correlation.n, c.correlation.reason or ""]
                for c in res.correlations]
        out.append(_table(["arm", "metric", "Spearman ρ", "p", "cases", "note"], rows,
                          caption="Explanation metric versus per-case gain"))
    else:
        out.append(_paragraph("No explanation-quality metrics were given."))
    out.append(figure)
    return "\n".join(out)


def _subgroups(a: StudyAnalysis) -> str:
    out = [_reason(a.subgroups)]
    res = a.subgroups.result
    if res is None:
        return "\n".join(out)
    out.append(_paragraph(f"Threshold: {res.threshold:g} years ({res.threshold_source})."))
    for g in res.groups:
        out.append(f"<h3>Readers with {escape(g.label)} of experience "
                   f"({len(g.readers)} readers, {g.n_reads} reads)</h3>")
        if g.reason:
            out.append(f'<p class="reason">{escape(g.reason)}</p>')
            continue
        gains = {x.arm: x for x in (g.gain.arms if g.gain is not None else ())}
        rows = []
        for p in g.proportions.arms:
            x = gains.get(p.arm)
            rows.append([a.meta.label(p.arm), _prop(p.accuracy), _prop(p.sensitivity),
                         _prop(p.specificity),
                         f"{_num(x.difference)} ({_ci(x.bootstrap_ci_low, x.bootstrap_ci_high)})"
                         if x is not None else "—"])
        out.append(_table(["arm", "accuracy", "sensitivity", "specificity",
                           "gain over unaided (bootstrap CI)"], rows))
        if g.gain_reason:
            out.append(f'<p class="reason">Gain not computed: {escape(g.gain_reason)}</p>')
    return "\n".join(out)


def _software(generated_at: str, versions: dict[str, str]) -> str:
    rows = [[name, version] for name, version in sorted(versions.items())]
    return (_paragraph(f"Generated {generated_at}.")
            + _table(["package", "version"], rows, numeric_from=99))


def render_html(analysis: StudyAnalysis, *, generated_at: str, versions: dict[str, str]) -> str:
    """The report as one self-contained HTML document (no external resources)."""
    a = analysis
    codes = [arm.arm for arm in a.counts.result.arms]
    figures = {
        "roc": _roc_figure(a, codes),
        "forest": _forest_figure(a),
        "likert": _likert_figure(a, codes),
        "reliance": _reliance_figure(a, codes),
        "metric_gain": _metric_figure(a, codes),
        "reading_time": _time_figure(a, codes),
    }
    bodies = {
        "summary": _summary(a),
        "methods": _methods(a),
        "counts": _counts(a),
        "proportions": _proportions(a),
        "mrmc_auc": _mrmc(a, "mrmc_auc", _reason(a.roc) + figures["roc"] + figures["forest"]),
        "mrmc_accuracy": _mrmc(a, "mrmc_accuracy", ""),
        "reliance": _reliance(a, figures["reliance"]),
        "agreement": _agreement(a),
        "ratings": _ratings(a, figures["likert"]),
        "reading_time": _reading_time(a, figures["reading_time"]),
        "explanation_gain": _gain(a, figures["metric_gain"]),
        "subgroups": _subgroups(a),
        "software": _software(generated_at, versions),
    }
    title = escape(a.meta.title)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{title}: reader-study report</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>{title}</h1>",
        f'<p class="meta">Reader-study report · generated {escape(generated_at)} · '
        + ("blinded arm labels" if not any(arm.explainer for arm in a.meta.arms)
           else "unblinded") + "</p>",
    ]
    for key, body in bodies.items():
        parts.append(f'<section id="{key}"><h2>{escape(SECTION_TITLES[key])}</h2>\n{body}'
                     "</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def render_pdf(html: str) -> bytes:
    """The HTML report as a PDF (WeasyPrint; the HTML refers to nothing outside itself)."""
    from PIL import ImageFile

    strict = ImageFile.LOAD_TRUNCATED_IMAGES
    import weasyprint  # sets Pillow's process-wide LOAD_TRUNCATED_IMAGES = True on import

    ImageFile.LOAD_TRUNCATED_IMAGES = strict  # keep image imports elsewhere in this process strict

    try:  # WeasyPrint >= 68: a fetcher object that refuses every protocol but data:
        from weasyprint.urls import URLFetcher

        fetcher = URLFetcher(allowed_protocols=("data",))
    except ImportError:  # older WeasyPrint: a fetcher function

        def fetcher(url: str, *args, **kwargs):
            if not url.startswith("data:"):
                raise ValueError(f"the report may not load {url}")
            return weasyprint.default_url_fetcher(url, *args, **kwargs)

    return weasyprint.HTML(string=html, url_fetcher=fetcher).write_pdf()
